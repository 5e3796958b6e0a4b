dag "runtime_function" {
  task "a" {
    command = "/bin/echo"
    args    = [upper("${run.id}"), "ok ${run.id}"]
    env     = { DAY = substr(run.logical_date, 0, 10) }
  }
}
