dag "bad_schedule" {
  schedule   = "0 25 * * *"
  timezone   = "Europe/Berln"
  start_date = "2026-13-01"
  catchup    = "lastest"

  task "a" {
    command = "/bin/true"
  }
}

dag "bad_dates" {
  schedule   = "@dayly"
  start_date = "2026-06-01"
  end_date   = "2026-01-01"

  task "a" {
    command = "/bin/true"
  }
}

dag "no_start" {
  schedule = "@every 15m"

  task "a" {
    command = "/bin/true"
  }
}
