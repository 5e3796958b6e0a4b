dag "deps" {
  defaults {
    command = "/bin/true"
  }

  task "extract" {
  }

  task "transform" {
    depends_on = ["extrakt", "extract"]
  }

  task "a" {
    depends_on = ["c"]
  }

  task "b" {
    depends_on = ["a"]
  }

  task "c" {
    depends_on = ["b"]
  }

  task "self" {
    depends_on = ["self"]
  }
}
