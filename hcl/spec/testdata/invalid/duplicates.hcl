queue "etl" {
}

queue "etl" {
}

dag "twice" {
  task "a" {
    command = "/bin/true"
  }
  task "a" {
    command = "/bin/false"
  }
}

dag "twice" {
  task "b" {
    command = "/bin/true"
  }
}
