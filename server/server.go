// Package server runs one dagflow server instance: it serves the web UI and HTTP API, registers
// the instance in Consul as the dagflow service with an HTTP health check, and contends for
// leadership. The instance holding the lock is tagged active, the others standby, so the Consul
// UI shows who leads and active.dagflow.service.consul reaches the leader.
//
// Leadership can be lost at any moment (see package consullock). When it is, the instance
// re-tags itself standby and contends again; leader-only work is handed the Leadership and must
// stop when its Lost channel closes.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/dagflow/dagflow/config"
	"github.com/dagflow/dagflow/consullock"
	"github.com/dagflow/dagflow/engine"
	"github.com/dagflow/dagflow/history"
	"github.com/dagflow/dagflow/internal/wait"
	"github.com/dagflow/dagflow/nomadexec"
	"github.com/dagflow/dagflow/state"
	"github.com/dagflow/dagflow/web"
)

// Roles an instance reports in its health and its Consul tags.
const (
	RoleActive  = "active"
	RoleStandby = "standby"
)

const (
	// shutdownTimeout bounds how long Stop waits for requests in flight.
	shutdownTimeout = 10 * time.Second
	// retryInterval is how long the leadership loop waits after a Consul error before it
	// contends again, so an unreachable Consul is not hammered.
	retryInterval = time.Second
	// registrationCheck is how often an instance asks its Consul agent whether it still knows
	// the instance's service. An agent deregisters a service whose check stayed critical for
	// leader.deregister_after (1 minute): an instance cut off from its agent that long finds
	// itself unknown when it is back, and every session it creates to contend is refused
	// ("Missing check"). One local read every 5 s costs nothing; the instance contends again
	// at most that long after it is back.
	registrationCheck = 5 * time.Second
)

// Server is one running dagflow server instance.
type Server struct {
	cfg     *config.Server
	consul  *consulapi.Client
	exec    *nomadexec.Executor
	logger  hclog.Logger
	metrics *engine.Metrics
	store   *state.Store
	history *history.DB // nil: no history block

	ln        net.Listener
	http      *http.Server
	serviceID string
	checkID   string
	lock      *consullock.Lock

	active   atomic.Bool
	roleMu   sync.Mutex
	roleCh   chan struct{} // closed, and replaced, when the role changes
	regMu    sync.Mutex    // serializes registrations, so the last one carries the current role
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// New returns a Server for cfg, talking to Consul through consul and to the Nomad of cfg.
func New(cfg *config.Server, consul *consulapi.Client, logger hclog.Logger) *Server {
	return &Server{cfg: cfg, consul: consul, logger: logger, roleCh: make(chan struct{})}
}

// Start listens, registers the instance in Consul and starts contending for leadership. It
// returns once the instance serves requests and is registered; leadership comes later, in the
// background.
func (s *Server) Start(ctx context.Context) error {
	store, err := state.New(s.consul, s.cfg.KVPrefix)
	if err != nil {
		return err
	}
	s.store = store
	if s.exec, err = nomadexec.New(s.cfg.NomadConfig(), s.cfg.JobPrefix, s.logger); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.metrics = engine.NewMetrics(reg)
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	s.serviceID = fmt.Sprintf("%s-%s-%s", s.cfg.ServiceName, host, port)
	s.checkID = "service:" + s.serviceID
	// The lock exists before the API serves, which reads the leader through it.
	s.lock, err = consullock.New(s.consul, consullock.Config{
		Key:       s.cfg.KVPrefix + "leader",
		Value:     []byte(s.serviceID + " " + s.advertiseURL()),
		Checks:    []string{s.checkID},
		LockDelay: s.cfg.Leader.LockDelay,
		Logger:    s.logger.Named("lock"),
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	var hist web.History // a nil *history.DB would be a non-nil interface
	if s.cfg.History.URL != "" {
		if s.history, err = history.Open(s.cfg.History.URL); err != nil {
			_ = ln.Close()
			return err
		}
		hist = s.history
	}
	s.http = &http.Server{
		Handler: web.New(web.Config{
			Store:         store,
			History:       hist,
			KeepRuns:      s.cfg.Retention.KeepRuns,
			Logs:          s.exec,
			Logger:        s.logger.Named("http"),
			Metrics:       reg,
			Role:          s.Role,
			RoleChanged:   s.RoleChanged,
			Leader:        s.leader,
			AnonymousRole: s.cfg.ACL.AnonymousRole,
			NomadUI:       s.nomadUI(),
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server failed", "error", err)
		}
	}()

	if err := s.retag(ctx); err != nil {
		_ = s.http.Close()
		return err
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { s.lead(lctx) })
	wg.Go(func() { s.keepRegistered(lctx) })
	go func() {
		wg.Wait()
		close(s.done)
	}()
	if s.history != nil {
		go s.migrate(lctx)
	}
	s.logger.Info("serving", "address", s.advertiseURL(), "service_id", s.serviceID, "kv_prefix", s.cfg.KVPrefix)
	return nil
}

// Stop hands leadership over (releasing the lock before anything else, so a standby takes over
// at once), deregisters the instance and stops serving. It blocks until all of that is done, and
// is safe to call twice and before Start.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
		if s.serviceID != "" {
			s.deregister()
		}
		if s.http != nil {
			ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
			defer cancel()
			_ = s.http.Shutdown(ctx)
		}
		if s.history != nil {
			s.history.Close()
		}
	})
}

// migrate applies history's migrations, again and again until PostgreSQL takes them: the
// server runs without history meanwhile.
func (s *Server) migrate(ctx context.Context) {
	log := s.logger.Named("history")
	for delay := time.Second; ; delay = min(2*delay, 30*time.Second) {
		err := s.history.Migrate(ctx)
		if err == nil {
			log.Info("history database ready", "database", s.history.Target())
			return
		}
		log.Warn("history database not ready; retrying", "database", s.history.Target(), "error", err, "retry_in", delay)
		wait.Sleep(ctx, delay)
		if ctx.Err() != nil {
			return
		}
	}
}

// Addr returns the address the instance serves on, once started.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Role returns RoleActive while the instance holds the leadership, else RoleStandby.
func (s *Server) Role() string {
	if s.active.Load() {
		return RoleActive
	}
	return RoleStandby
}

// RoleChanged returns a channel closed when the instance's role next changes: the web server's
// long-polls end then, so that a page following this instance learns its new role at once.
func (s *Server) RoleChanged() <-chan struct{} {
	s.roleMu.Lock()
	defer s.roleMu.Unlock()
	return s.roleCh
}

func (s *Server) setActive(active bool) {
	s.active.Store(active)
	s.roleMu.Lock()
	defer s.roleMu.Unlock()
	close(s.roleCh)
	s.roleCh = make(chan struct{})
}

// lead contends for leadership until ctx ends, tagging the instance as it goes.
func (s *Server) lead(ctx context.Context) {
	for ctx.Err() == nil {
		ld, err := s.lock.Acquire(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Warn("contend for leadership", "error", err)
				wait.Sleep(ctx, retryInterval)
			}
			continue
		}
		s.setActive(true)
		s.logger.Info("acquired leadership", "session", ld.Session())
		s.retag(ctx)
		err = s.schedule(ctx, ld)
		failed := ctx.Err() == nil && ld.Err() == nil
		switch {
		case ctx.Err() != nil:
			s.logger.Info("handing leadership over")
		case ld.Err() != nil:
			s.logger.Warn("lost leadership", "error", ld.Err())
		default:
			// The engine no longer knows what Consul holds: give the lock up, so that
			// whichever instance takes it starts over from Consul.
			s.logger.Error("scheduler stopped; giving leadership up", "error", err)
		}
		// No leader work runs any more: the instance says so at once, even when the release
		// below waits for a Consul it cannot reach (cut off, it would go on reporting itself
		// active for as long as the release waits).
		s.setActive(false)
		// Then release, before anything else: a standby's blocking query returns at once.
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := ld.Release(rctx); err != nil {
			s.logger.Warn("release leadership", "error", err)
		}
		cancel()
		s.retag(ctx)
		if failed {
			wait.Sleep(ctx, retryInterval)
		}
	}
}

// leader reads the lock's value, which names the active instance; nil when none leads.
func (s *Server) leader(ctx context.Context) ([]byte, error) { return s.lock.Leader(ctx) }

// nomadUI is the Nomad web UI the dagflow UI links tries to.
func (s *Server) nomadUI() string {
	if s.cfg.Nomad.UIAddress != "" {
		return s.cfg.Nomad.UIAddress
	}
	return strings.TrimSuffix(s.cfg.NomadConfig().Address, "/") + "/ui"
}

// schedule is the leader's work under ld: the engine, and beside it the recorder of history
// when there is one. It returns when the engine does.
func (s *Server) schedule(ctx context.Context, ld *consullock.Leadership) error {
	cfg := engine.Config{
		Store:      s.store,
		Executor:   s.exec,
		Logger:     s.logger.Named("engine"),
		Metrics:    s.metrics,
		LogTail:    s.cfg.Retention.LogTail,
		PurgeAfter: s.cfg.Retention.PurgeAfter,
		LockDelay:  cmp.Or(s.cfg.Leader.LockDelay, consullock.DefaultLockDelay),
		KeepRuns:   s.cfg.Retention.KeepRuns,
		UIAddress:  s.advertiseURL(), // where callback payloads link to
	}
	if s.history == nil {
		return engine.Run(ctx, cfg, ld)
	}
	rec := history.NewRecorder(history.RecorderConfig{
		DB: s.history, Store: s.store, Logs: s.exec, Logger: s.logger.Named("history"), MaxLogBytes: s.cfg.History.MaxLogBytes,
	})
	cfg.History = rec
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rec.Run(rctx, ld); err != nil && ld.Err() == nil {
			s.logger.Error("history recorder stopped", "error", err)
		}
	}()
	err := engine.Run(ctx, cfg, ld)
	stop()
	<-done
	return err
}

// keepRegistered registers the instance again, until ctx ends, whenever its Consul agent no
// longer knows its service (see registrationCheck). Other errors are left alone: an agent that
// cannot be reached cannot be registered with either, and the next look tries again.
func (s *Server) keepRegistered(ctx context.Context) {
	t := time.NewTicker(registrationCheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, _, err := s.consul.Agent().Service(s.serviceID, (&consulapi.QueryOptions{}).WithContext(ctx))
		var status consulapi.StatusError
		if errors.As(err, &status) && status.Code == http.StatusNotFound && ctx.Err() == nil {
			s.logger.Warn("consul no longer knows this instance (deregistered while its check was critical); registering it again", "service_id", s.serviceID)
			if s.retag(ctx) == nil {
				s.logger.Info("registered again", "service_id", s.serviceID)
			}
		}
	}
}

// retag (re-)registers the service with the tag of the current role. Re-registering keeps the
// check's state, so the leader's session, bound to the check, survives it.
func (s *Server) retag(ctx context.Context) error {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	p, _ := strconv.Atoi(port)
	reg := &consulapi.AgentServiceRegistration{
		ID:   s.serviceID,
		Name: s.cfg.ServiceName,
		Port: p,
		Tags: []string{s.Role()},
		Meta: map[string]string{"kv_prefix": s.cfg.KVPrefix, "url": s.advertiseURL()},
		Check: &consulapi.AgentServiceCheck{
			CheckID:                        s.checkID,
			Name:                           "dagflow HTTP health",
			HTTP:                           s.advertiseURL() + "/v1/health",
			Interval:                       s.cfg.Leader.CheckInterval.String(),
			Timeout:                        s.cfg.Leader.CheckTimeout.String(),
			DeregisterCriticalServiceAfter: s.cfg.Leader.DeregisterAfter.String(),
			// Passing from the start: a new instance must be able to take a lock bound to this
			// check before Consul has run it once.
			Status: consulapi.HealthPassing,
		},
	}
	opts := consulapi.ServiceRegisterOpts{}.WithContext(ctx)
	if err := s.consul.Agent().ServiceRegisterOpts(reg, opts); err != nil {
		s.logger.Warn("register service", "error", err)
		return fmt.Errorf("register service %q in consul: %w", s.serviceID, err)
	}
	return nil
}

func (s *Server) deregister() {
	if err := s.consul.Agent().ServiceDeregister(s.serviceID); err != nil {
		s.logger.Warn("deregister service", "error", err)
	}
}

// advertiseURL is where Consul's check and other instances reach this one: the configured
// advertise address, or the address actually listened on (which resolves a ":0" port).
func (s *Server) advertiseURL() string {
	if s.cfg.Advertise != "" {
		return s.cfg.AdvertiseURL()
	}
	return "http://" + s.ln.Addr().String()
}
