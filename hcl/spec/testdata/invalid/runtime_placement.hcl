dag "placement" {
  schedule   = "@daily"
  start_date = "2026-01-01"

  param "who" {
    type     = string
    required = true
  }

  param "files" {
    type    = list(string)
    default = ["a", "b"]
  }

  task "a" {
    command = "/bin/echo"
    args = [
      lower("${params.who}"),
      replace(run.logical_date, "-", ""),
      run.type == "manual" ? "m" : "s",
      "ok ${run.id} ${params.files}",
      run.id,
    ]
    env = {
      "${run.id}" = "key"
      FINE        = "${task.try}"
    }
    timezone = "Local"
  }
}

dag "zones" {
  timezone = "Local"
  task "a" {
    command = "/bin/true"
    resources {
      cpu = 100
    }
    resources {
      memory = 100
    }
  }
}

queue "q" {
  constraint {
    attribute = "${attr.kernel.name}"
    operator  = "regexp"
    value     = "["
  }
  constraint {
    attribute = "${attr.kernel.name}"
  }
  constraint {
    operator = "is_set"
    value    = "x"
  }
}
