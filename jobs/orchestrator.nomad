# dagflow servers as a Nomad service job: `count` instances, one active (it holds the Consul
# lock and schedules), the others hot standbys that take over within seconds. Every instance
# serves the UI and the API.
#
# On the dev stack of `make dev` (raw_exec, one node):
#
#   nomad job run -var dagflow_binary=$PWD/bin/dagflow jobs/orchestrator.nomad
#
# Each instance registers itself in Consul as the `dagflow` service, tagged active or standby,
# with an HTTP check on /v1/health: the leader's Consul session is bound to that check, which is
# how a dead leader is noticed in about a second. That is why this job has no `service` block of
# its own: Nomad's tags are fixed per job, and a second registration would only duplicate it.
#
# Real clusters run the docker variant: set driver = "docker" and image = "your/dagflow:tag"
# (the image's entrypoint is the dagflow binary), and pass tokens through Nomad Variables or
# Vault (see the commented template below) rather than in plain variables.

variable "count" {
  type        = number
  default     = 2
  description = "How many dagflow servers run: one leads, the others stand by."
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "driver" {
  type        = string
  default     = "raw_exec"
  description = "raw_exec or exec to run dagflow_binary on the host; docker to run image."
}

variable "dagflow_binary" {
  type        = string
  default     = "/usr/local/bin/dagflow"
  description = "Absolute path of the dagflow binary on every client node (raw_exec and exec)."
}

variable "image" {
  type        = string
  default     = "dagflow/dagflow:latest"
  description = "The image to run with the docker driver."
}

variable "consul_address" {
  type        = string
  default     = "127.0.0.1:8500"
  description = "The Consul agent each instance talks to: the one on its node."
}

variable "nomad_address" {
  type        = string
  default     = "http://127.0.0.1:4646"
  description = "The Nomad API the scheduler submits task jobs to."
}

variable "kv_prefix" {
  type    = string
  default = "dagflow/"
}

variable "log_level" {
  type    = string
  default = "info"
}

variable "cpu" {
  type    = number
  default = 200
}

variable "memory" {
  type        = number
  default     = 512
  description = "MB per server. Its soft memory limit is 90% of it (NOMAD_MEMORY_LIMIT; docs/server.md, Memory): an idle leader with 10,000 DAGs of 10 tasks uses about 240 MiB, 512 leaves room for its loads."
}

job "dagflow" {
  type        = "service"
  datacenters = var.datacenters

  group "server" {
    count = var.count

    # Instances go to distinct nodes where the cluster has several; on a one-node dev cluster
    # they share it. (A distinct_hosts constraint would leave the second one unplaced there.)
    spread {
      attribute = "${node.unique.id}"
    }

    network {
      port "http" {}
    }

    # A standby takes over as soon as the leader's check fails; Nomad restarting or
    # rescheduling the failed instance only restores the spare.
    restart {
      attempts = 3
      delay    = "5s"
      interval = "1m"
      mode     = "delay"
    }

    update {
      max_parallel     = 1
      min_healthy_time = "5s"
      healthy_deadline = "2m"
    }

    task "dagflow" {
      driver = var.driver

      config {
        command = var.driver == "docker" ? null : var.dagflow_binary
        image   = var.driver == "docker" ? var.image : null
        ports   = var.driver == "docker" ? ["http"] : null
        args    = ["server", "-config", "${NOMAD_TASK_DIR}/server.hcl"]
      }

      template {
        destination = "local/server.hcl"
        change_mode = "restart"
        data        = <<-EOT
          listen    = "{{ env "NOMAD_IP_http" }}:{{ env "NOMAD_PORT_http" }}"
          kv_prefix = "${var.kv_prefix}"
          log_level = "${var.log_level}"

          consul {
            address = "${var.consul_address}"
          }

          nomad {
            address = "${var.nomad_address}"
          }
          EOT
        # With tokens, add to data (Nomad Variables at nomad/jobs/dagflow):
        #   {{ with nomadVar "nomad/jobs/dagflow" }}
        #   consul { token = "{{ .consul_token }}" }
        #   nomad  { token = "{{ .nomad_token }}" }
        #   {{ end }}
      }

      # Long-term history in PostgreSQL (docs/server.md): its URL holds a password, so it comes
      # from Nomad Variables as an environment variable, never from a job variable:
      #   nomad var put nomad/jobs/dagflow history_url=postgres://dagflow:...@db:5432/dagflow
      # Without a history_url item the servers run without history. (nomadVarList, unlike
      # nomadVar, does not wait for a variable that does not exist.)
      template {
        destination = "secrets/history.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{ range nomadVarList "nomad/jobs/dagflow" }}{{ if eq .Path "nomad/jobs/dagflow" }}{{ with nomadVar .Path }}{{ with .history_url }}DAGFLOW_HISTORY_URL={{ toJSON .Value }}{{ end }}{{ end }}{{ end }}{{ end }}
          EOT
      }

      # SIGINT makes an instance hand its lock over at once; the kill timeout leaves it time to.
      kill_signal  = "SIGINT"
      kill_timeout = "15s"

      resources {
        cpu    = var.cpu
        memory = var.memory
      }
    }
  }
}
