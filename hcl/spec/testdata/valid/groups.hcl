# Task groups: namespaced tasks, a group's defaults and depends_on, a mapped group, and
# depends_on naming a whole group, one of its instances, or one of its tasks.
dag "grouped" {
  task "start" {
    command = "/bin/true"
  }

  group "load" {
    depends_on = ["start"]
    defaults {
      command = "/bin/sh"
      retries = 2
    }
    task "extract" {
      args = ["-c", "echo extract"]
    }
    task "transform" {
      depends_on = ["extract"]
      args       = ["-c", "echo transform ${run.id}"]
    }
  }

  group "region" {
    for_each = ["eu", "us"]
    task "fetch" {
      command = "/bin/echo"
      args    = ["${each.key}"]
    }
    task "publish" {
      depends_on = ["fetch", "load.transform"]
      command    = "/bin/true"
    }
  }

  task "report_eu" {
    depends_on = ["region[eu]"]
    command    = "/bin/true"
  }

  task "end" {
    depends_on = ["load", "region", "report_eu"]
    command    = "/bin/true"
  }
}
