dag "has space" {
  task "a" {
    command = "/bin/true"
  }
}

dag "ok" {
  task "bad/name" {
    command = "/bin/true"
  }

  task "fan" {
    for_each = ["eu west", "us"]
    command  = "/bin/true"
  }

  task "fan2" {
    for_each = 3
    command  = "/bin/true"
  }
}

queue "x.y" {
}

dag "empty" {
}
