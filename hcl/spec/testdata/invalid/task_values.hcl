dag "task_values" {
  task "a" {
    command      = "/bin/true"
    trigger_rule = "all_sucess"
    retry_delay  = "5 minutes"
    timeout      = "-1s"
    retries      = 1.5
    priority     = 500
    queue        = "gpus"
    driver       = "dockr"
  }

  task "b" {
    driver = "docker"
  }

  task "c" {
    image = "alpine:3"
  }

  task "d" {
    command         = "/bin/true"
    retry_delay     = "10m"
    max_retry_delay = "1m"
  }
}

queue "gpu" {
  max_running = -1
  constraint {
    attribute = "${attr.kernel.name}"
    operator  = "equals"
    value     = "linux"
  }
}
