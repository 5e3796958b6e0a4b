package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	udiff "github.com/aymanbagabas/go-udiff"
	"github.com/hashicorp/hcl/v2"

	"github.com/dagflow/dagflow/hcl/spec"
)

// exitUnformatted is fmt -check's exit code when a file is not formatted, as terraform fmt.
const exitUnformatted = 3

// FmtCommand rewrites DAG files in canonical form.
type FmtCommand struct{ *Meta }

// Help implements cli.Command.
func (c *FmtCommand) Help() string {
	return strings.TrimSpace(`
Usage: dagflow fmt [options] [PATH]

  Rewrites the DAG files at PATH (a file, every *.hcl file below a
  directory, or "-" for standard input; default ".") in the canonical
  layout and prints the names of the files it changed.

Options:

  -check     Change nothing; list the files that are not formatted and exit
             with status 3 if there are any.
  -diff      Print the changes as unified diffs.
  -no-color  Print diagnostics without colors.

Exit codes:

  0  All files are (now) formatted.
  1  A file could not be read, written or parsed.
  3  With -check: some files are not formatted.
`)
}

// Synopsis implements cli.Command.
func (c *FmtCommand) Synopsis() string { return "Rewrite DAG files in the canonical format" }

// Run implements cli.Command.
func (c *FmtCommand) Run(args []string) int {
	fs := c.flagSet("fmt", c.Help, colorFlags)
	check := fs.Bool("check", false, "")
	diff := fs.Bool("diff", false, "")
	path, ok := c.parse(fs, args)
	if !ok {
		return exitError
	}
	if path == "-" {
		return c.stdin()
	}
	files, err := spec.Files(path)
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: %v", err))
		return exitError
	}
	p := spec.NewParser()
	code := exitOK
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			c.UI.Error(fmt.Sprintf("Error: %v", err))
			code = exitError
			continue
		}
		out, diags := spec.Format(src, name)
		if diags.HasErrors() {
			// Parse again through the parser so the diagnostics print with source lines.
			_, diags = p.LoadSource(src, name)
			c.printDiagnostics(p, diags)
			code = exitError
			continue
		}
		if bytes.Equal(src, out) {
			continue
		}
		c.UI.Output(name)
		if *diff {
			c.UI.Output(udiff.Unified(name, name, string(src), string(out)))
		}
		if *check {
			if code == exitOK {
				code = exitUnformatted
			}
			continue
		}
		if err := writeFileKeepMode(name, out); err != nil {
			c.UI.Error(fmt.Sprintf("Error: %v", err))
			code = exitError
		}
	}
	return code
}

// stdin formats standard input to standard output.
func (c *FmtCommand) stdin() int {
	src, err := io.ReadAll(os.Stdin)
	if err != nil {
		c.UI.Error(fmt.Sprintf("Error: read standard input: %v", err))
		return exitError
	}
	out, diags := spec.Format(src, "<stdin>")
	if diags.HasErrors() {
		w := hcl.NewDiagnosticTextWriter(os.Stderr, map[string]*hcl.File{"<stdin>": {Bytes: src}}, 0, false)
		_ = w.WriteDiagnostics(diags)
		return exitError
	}
	_, _ = os.Stdout.Write(out)
	return exitOK
}

// writeFileKeepMode replaces a file's content atomically (write aside, then rename), so an
// interrupted fmt never leaves a half-written DAG file.
func writeFileKeepMode(name string, data []byte) error {
	info, err := os.Stat(name)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".dagflow-fmt-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Chmod(tmp.Name(), info.Mode().Perm()); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
