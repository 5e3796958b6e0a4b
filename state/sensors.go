package state

import "time"

// SensorWait is the waiting state of a sensor task instance (State Scheduled, its task a
// sensor), kept on its record so that a new leader resumes the wait: the timeout counts from
// Started, whichever leader started it.
//
// It is written when the wait starts, when its Message changes and when it ends, never on a
// poke alone: a thousand sensors poking every minute would otherwise be 17 writes a second.
// Pokes is therefore the count as of the last write; the leader counts the others in memory.
type SensorWait struct {
	Started time.Time `json:"started"`
	Pokes   int       `json:"pokes,omitempty"`
	Message string    `json:"message,omitempty"` // the last poke's result, for people
}
