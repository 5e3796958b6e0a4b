# Dynamic fan-out: a task lists what there is to do and publishes the list as an output; a task
# mapped over that output gets one instance per element, created when the run reaches it; a
# third task merges what every instance published.
#
# Tasks: list -> process[0], process[1], ... (one per listed file) -> merge
#
# A task publishes outputs by writing one JSON object (at most 64 KiB) to the file named by
# $DAGFLOW_OUTPUT. Anyone who may view a run can read its outputs: they are not for secrets.

dag "map_reduce" {
  description = "List files, process each in a mapped task, merge the results."
  tags        = ["example"]
  start_date  = "2026-11-23"

  # How many files list finds: a manual trigger may ask for another number.
  param "files" {
    type    = number
    default = 5
  }

  defaults {
    command = "/bin/sh"
  }

  # Publishes {"files": ["part-1.csv", ...]}.
  task "list" {
    args = ["-c", <<-EOT
      files=""
      sep=""
      for i in $(seq 1 "$COUNT"); do files="$files$sep\"part-$i.csv\""; sep=","; done
      echo "{\"files\": [$files]}" > "$DAGFLOW_OUTPUT"
    EOT
    ]
    env = { COUNT = "${params.files}" }
  }

  # One instance per element of list's files, named process[0], process[1], ...: each.key is
  # the index, each.value the element (a list or map element that is not a string, number or
  # bool comes as JSON). An empty list skips process and, by its trigger rule, merge.
  task "process" {
    for_each       = tasks.list.outputs.files
    max_map_length = 100
    args = ["-c", <<-EOT
      rows=$(( (${each.key} + 1) * 10 ))
      echo "processed $FILE: $rows rows"
      echo "{\"rows\": $rows}" > "$DAGFLOW_OUTPUT"
    EOT
    ]
    env = { FILE = "${each.value}" }
  }

  # Waits for every instance of process. tasks.process.outputs.rows is a JSON object of each
  # instance's rows by instance key: {"0": 10, "1": 20, ...}.
  task "merge" {
    depends_on = ["process"]
    args = ["-c", <<-EOT
      echo "rows per file: $ROWS"
      total=$(echo "$ROWS" | tr -c '0-9\n' ' ' | awk '{for (i = 2; i <= NF; i += 2) s += $i} END {print s}')
      echo "{\"total\": $total}" > "$DAGFLOW_OUTPUT"
    EOT
    ]
    env = { ROWS = "${tasks.process.outputs.rows}" }
  }
}
