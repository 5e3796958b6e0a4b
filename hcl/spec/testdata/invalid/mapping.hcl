dag "mapping" {
  task "list" {
    command = "/bin/true"
  }

  task "fetch" {
    for_each = ["eu", "us"]
    command  = "/bin/true"
  }

  task "unknown" {
    for_each = tasks.lsit.outputs.files
    command  = "/bin/echo"
  }

  task "self" {
    for_each = tasks.self.outputs.files
    command  = "/bin/echo"
  }

  task "nested" {
    for_each = tasks.fetch.outputs.files
    command  = "/bin/echo"
  }

  task "shape" {
    for_each = tasks.list.files
    command  = "/bin/echo"
  }

  task "static_each" {
    for_each       = tasks.list.outputs.files
    command        = "/bin/echo"
    args           = [upper(each.value)]
    queue          = "q-${each.key}"
    max_map_length = 5000
  }

  task "limit" {
    max_map_length = 10
    command        = "/bin/true"
  }
}
