# A DAG without a schedule runs only when triggered by hand. Its params are the trigger's
# form: typed values, in declaration order, each with a default or marked required.
# Param values reach tasks as ${params.NAME} in command, args, image, env and config.
#
# Every trigger is checked against these blocks before a run is created: a param the DAG does
# not have, a value not of the param's type, or a required param without a value is refused,
# with one message per param, and no run starts.

dag "manual_report" {
  description = "Build a sales report for one region on demand."
  tags        = ["reports", "example"]

  param "region" {
    type        = string
    default     = "eu"
    description = "Region to report on, such as eu or us."
  }

  param "top" {
    type        = number
    default     = 10
    description = "How many products the report lists."
  }

  param "publish" {
    type        = bool
    required    = true # no default: whoever triggers the run must choose
    description = "Whether to publish the report after building it, or only build it."
  }

  # A list (or map, or object) param reaches tasks as its JSON text, such as
  # ["sales@example.com"], for the task's program to parse.
  param "recipients" {
    type        = list(string)
    default     = ["sales@example.com"]
    description = "Who receives the published report."
  }

  task "build" {
    command = "/bin/sh"
    args    = ["-c", "echo \"build report for $REGION: top ${params.top} products\"; sleep 1"]

    env = {
      REGION = "${params.region}"
    }
  }

  task "publish" {
    depends_on = ["build"]
    command    = "/bin/sh"
    args       = ["-c", "case \"$PUBLISH\" in true) echo \"publish report for ${params.region} to $RECIPIENTS\" ;; *) echo 'publish=false: nothing to do' ;; esac"]

    env = {
      PUBLISH    = "${params.publish}"
      RECIPIENTS = "${params.recipients}"
    }
  }
}
