dag "callbacks" {
  on_failure {
    webhook {
      url = "ftp://hooks.example.com/x"
    }
  }
  on_success {
  }
  deadline {
    after_logical_date = "2h"
    after_start        = "1h"
  }

  task "a" {
    command = "/bin/true"
    on_retry {
      webhook {
        url     = "https://user:secret@hooks.example.com/x"
        headers = { "Bad Header" = "x", "Content-Type" = "text/plain", "X-Api-Key" = "k" }
        header "X-Token" {
          path = "/dagflow/hooks"
          key  = ""
        }
      }
    }
    deadline {
      after_start = "0s"
    }
  }

  task "b" {
    command = "/bin/true"
    on_failure {
      webhook {
        url = "hooks.example.com"
        header "Authorization" {
          path = "dagflow/hooks"
          key  = "token"
        }
        header "authorization" {
          path = "dagflow/hooks"
          key  = "token"
        }
      }
    }
    on_failure {
      webhook {
        url = "https://hooks.example.com"
      }
    }
  }
}

dag "callback_tasks" {
  on_failure {
    task {
      queue = "pager"
    }
    task {
      command = "/bin/echo"
      args    = ["${callback.stat}"]
    }
  }

  task "a" {
    command = "/bin/echo"
    args    = ["${callback.state}"]
  }

  task "b" {
    command = "/bin/true"
    on_retry {
      task {
        command = "/bin/true"
        queue   = "defalt"
      }
    }
  }
}
