dag "groups" {
  task "a" {
    command = "/bin/true"
  }

  group "a" {
    task "x" {
      command = "/bin/true"
    }
  }

  group "empty" {
  }

  group "outer" {
    group "inner" {
      task "y" {
        command = "/bin/true"
      }
    }
    task "z" {
      depends_on = ["nope"]
      command    = "/bin/true"
    }
  }

  group "mapped" {
    for_each = ["p", "q"]
    task "w" {
      for_each = ["1"]
      command  = "/bin/true"
    }
  }

  group "bad.name" {
    task "v" {
      command = "/bin/true"
    }
  }
}
