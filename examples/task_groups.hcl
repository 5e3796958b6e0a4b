# Task groups gather tasks under one name: "load.extract", "region[eu].fetch". The graph in
# the UI folds each group into one node that a click unfolds.
#
# Tasks: start -> load.extract -> load.transform -> region[eu|us].fetch -> report
dag "task_groups" {
  description = "An extract-transform group, a group mapped over regions, and a report after both."
  tags        = ["groups", "example"]
  # No schedule: trigger it.

  defaults {
    command = "/bin/sh"
  }

  task "start" {
    args = ["-c", "echo start ${run.logical_date}"]
  }

  group "load" {
    depends_on = ["start"] # every task of the group waits for start
    defaults {
      retries = 1
    }
    task "extract" {
      args = ["-c", "echo extract"]
    }
    task "transform" {
      depends_on = ["extract"] # the sibling, load.extract
      args       = ["-c", "echo transform"]
    }
  }

  group "region" {
    for_each   = ["eu", "us"]
    depends_on = ["load"] # the whole group: load.extract and load.transform
    task "fetch" {
      args = ["-c", "echo fetch ${each.key}"]
    }
  }

  task "report" {
    depends_on = ["region"] # every task of every instance of region
    args       = ["-c", "echo report"]
  }
}
