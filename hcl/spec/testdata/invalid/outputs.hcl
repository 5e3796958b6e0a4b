dag "outputs" {
  defaults {
    env = { FROM_DEFAULTS = "${tasks.list.outputs.files}" }
  }

  task "list" {
    command = "/bin/true"
  }

  task "fetch" {
    for_each = ["eu", "us"]
    command  = "/bin/true"
  }

  task "early" {
    command = "/bin/echo"
    args    = ["${tasks.merge.outputs.total}", "${tasks.lsit.outputs.files}", "${tasks.list.files}"]
  }

  task "merge" {
    depends_on = ["list", "fetch[eu]"]
    command    = "/bin/echo"
    args       = ["${tasks.list.outputs.files}", "${tasks.fetch.outputs.rows}", "${tasks.merge.outputs.total}"]
    queue      = "q-${tasks.list.outputs.queue}"
    env        = { UPPER = upper(tasks.list.outputs.files) }
  }
}
