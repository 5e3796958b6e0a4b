variable "regions" {
  type    = list(string)
  default = ["eu", "us"]
}

locals {
  script = "/bin/sh"
}

queue "gpu" {
  node_pool   = "gpu"
  max_running = 2
  constraint {
    attribute = "${attr.kernel.name}"
    value     = "linux"
  }
}

dag "nightly_etl" {
  description = "Nightly <b>ETL</b>"
  schedule    = "0 2 * * *"
  timezone    = "Europe/Berlin"
  start_date  = "2026-11-01"
  catchup     = "latest"

  param "day" {
    type    = string
    default = "today"
  }

  defaults {
    command = local.script
    retries = 2
    env = { STAGE = "prod" }
    resources {
      cpu = 200
    }
  }

  task "extract" {
    for_each = toset(var.regions)
    args     = ["-c", "echo extract ${each.key} for ${run.logical_date} try ${task.try} $${HOME}"]
  }

  task "transform" {
    depends_on = ["extract"]
    args       = ["-c", "echo ${params.day}"]
    queue      = "gpu"
  }

  task "load" {
    depends_on   = ["transform"]
    args         = ["-c", "echo load"]
    trigger_rule = "all_done"
    env = { RUN = "${run.id}" }
  }
}
