dag "params" {
  param "count" {
    type    = number
    default = "many"
  }

  param "date" {
    type     = string
    required = true
    default  = "2026-01-01"
  }

  param "flag" {
    type = bool
  }

  param "kind" {
    type = strin
  }

  param "bad-name" {
    default = "x"
  }

  task "a" {
    command = "/bin/echo"
    args    = ["${params.cuont}"]
  }
}
