variable "env" {
  default = "prod"
}

locals {
  a = local.b
  b = local.a
}

dag "runtime" {
  description = "run ${run.id}"

  task "a" {
    command = "/bin/echo"
    args    = ["${run.nope}", "${task.tries}", "${dag.name}", "${var.evn}", "${upper(run.id)}", "${each.key}", "${nope.x}"]
    queue   = "q-${run.id}"
  }
}
