dag "queued_timeout" {
  defaults {
    queued_timeout = "ten minutes"
  }

  task "a" {
    command        = "/bin/true"
    queued_timeout = "-5m"
  }

  task "b" {
    command        = "/bin/true"
    queued_timeout = 600
  }
}
