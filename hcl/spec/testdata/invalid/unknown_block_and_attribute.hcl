dag "typos" {
  shedule = "@daily"

  task "a" {
    command = "/bin/true"
    retires = 3
  }

  taks "b" {
  }
}

pipeline "x" {
}
