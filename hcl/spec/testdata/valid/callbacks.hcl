dag "alerts" {
  on_failure {
    webhook {
      url     = "https://hooks.example.com/dagflow"
      headers = { "X-Team" = "data" }
      header "Authorization" {
        path = "dagflow/hooks"
        key  = "token"
      }
    }
  }
  on_success {
    webhook {
      url = "http://127.0.0.1:9000/done"
    }
  }
  deadline {
    after_logical_date = "2h"
    on_miss {
      webhook {
        url = "https://hooks.example.com/late"
      }
    }
  }

  defaults {
    on_retry {
      webhook {
        url = "https://hooks.example.com/retry"
      }
    }
  }

  task "load" {
    command = "/bin/true"
    retries = 2
    on_failure {
      webhook {
        url = "https://hooks.example.com/task"
      }
    }
    deadline {
      after_start = "30m"
    }
  }
}

dag "alert_task" {
  on_failure {
    task {
      command = "/bin/sh"
      args    = ["-c", "echo \"${callback.event}: ${dag.name} ${run.id} ${callback.state}\""]
      env     = { DELIVERY = "${callback.delivery_id}" }
      resources {
        memory = 64
      }
    }
  }

  task "a" {
    command = "/bin/false"
  }
}
