package service

import (
	"path"
	"regexp"
	"strings"
)

// Interpreter families whose programs are named after the script or class
// they run rather than after the interpreter's own executable.
type interpreter int

const (
	notInterpreter interpreter = iota
	python
	node
	java
	ruby
	perl
	php
	shell
	lua
)

var interpreterNames = []struct {
	re   *regexp.Regexp
	kind interpreter
}{
	{regexp.MustCompile(`^(python|pypy)[0-9.]*$`), python},
	{regexp.MustCompile(`^(node|nodejs|deno|bun)$`), node},
	{regexp.MustCompile(`^java$`), java},
	{regexp.MustCompile(`^ruby[0-9.]*$`), ruby},
	{regexp.MustCompile(`^perl[0-9.]*$`), perl},
	{regexp.MustCompile(`^php[0-9.]*$`), php},
	{regexp.MustCompile(`^(sh|bash|dash|zsh|ksh|ash|mksh)$`), shell},
	{regexp.MustCompile(`^(lua|luajit)[0-9.]*$`), lua},
}

func interpreterOf(exeBase string) interpreter {
	for _, in := range interpreterNames {
		if in.re.MatchString(exeBase) {
			return in.kind
		}
	}
	return notInterpreter
}

// Options that take the next argument as their value, per interpreter. An
// option written as --opt=value is one argument and needs no entry.
var valueOptions = map[interpreter]map[string]bool{
	python: set("-W", "-X", "--check-hash-based-pycs"),
	node:   set("-r", "--require", "--loader", "--import", "-C", "--conditions", "--experimental-loader", "--env-file", "--title"),
	java:   set("-cp", "-classpath", "--class-path", "-p", "--module-path", "--upgrade-module-path", "--add-modules", "--enable-native-access", "--limit-modules", "-javaagent"),
	ruby:   set("-I", "-r", "-C", "-E", "-F", "-x"),
	perl:   set("-I", "-M", "-m", "-x"),
	php:    set("-c", "-d", "-z", "-t"),
	shell:  set("-o", "+o", "-O", "+O"),
	lua:    set("-l"),
}

// Options after which there is no script: the program comes from the
// command line itself (which may hold secrets, so it is never looked at).
var inlineOptions = map[interpreter]map[string]bool{
	python: set("-c"),
	node:   set("-e", "--eval", "-p", "--print"),
	ruby:   set("-e"),
	perl:   set("-e", "-E"),
	php:    set("-r", "-S", "-a"),
	shell:  set("-c", "-i", "-s"),
	lua:    set("-e", "-i"),
}

func set(items ...string) map[string]bool {
	m := make(map[string]bool, len(items))
	for _, s := range items {
		m[s] = true
	}
	return m
}

// scriptExtensions are dropped from a script's file name.
var scriptExtensions = set(".py", ".pyc", ".pyz", ".js", ".mjs", ".cjs", ".ts", ".mts", ".jar", ".war",
	".rb", ".pl", ".pm", ".php", ".sh", ".bash", ".zsh", ".lua")

// genericScripts are file names that say less than their directory does.
var genericScripts = set("index", "__main__", "main")

// safeName is what a name taken from the command line must look like to be
// used as a label: a plain file or module name. Anything else (a flag value,
// a URL, something with '=' in it) is never copied out of the command line.
var safeName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._+@-]{0,63}$`)

// program is what a process runs, as far as naming goes.
type program struct {
	name string
	// script is set when name came from the script an interpreter runs.
	script bool
	// shell is set for a shell running a script file: the commands it runs
	// belong to the script.
	shell bool
}

// programName derives a service name for one process: the executable's base
// name, or, for an interpreter, the script, module, jar or class it runs
// (`python3 app.py` → app, `java -jar shop.jar` → shop, `node server.js` →
// server). comm is the fallback when the executable cannot be read. Only a
// script's base name is ever taken from args, and only when it looks like a
// file name and isFile says it names a regular file the process can see
// (relative to its working directory): a word of the command line that
// is no file — the value of an option the parser does not know, such as
// `--password hunter2` — never becomes a name. A module (`-m`) or a Java
// class is named without a file, the class only when it looks like one.
//
// An executable whose file name says nothing of the program (see opaque) is
// named by own, what the program says it is (its Go build information, its
// argv[0]), else by comm.
func programName(exe, comm string, args []string, isFile func(string) bool, own func() string) program {
	base := path.Base(strings.TrimSuffix(exe, " (deleted)"))
	switch {
	case exe == "" || base == "." || base == "/":
		// No executable to go by (permission): the kernel's comm is
		// the best name left, whole again when it was cut.
		base = uncut(comm, args)
	case opaque(base):
		base = comm
		if n := own(); n != "" {
			base = n
		}
	}
	kind := interpreterOf(base)
	if kind == notInterpreter || len(args) < 2 {
		return program{name: cleanName(base)}
	}
	script, ok := scriptArg(kind, args[1:], isFile)
	if !ok {
		return program{name: cleanName(base)}
	}
	return program{name: script, script: true, shell: kind == shell}
}

// commLen is the longest comm the kernel keeps (TASK_COMM_LEN less its
// terminating zero): a longer executable name is cut to it.
const commLen = 15

// uncut returns comm, or, when it is as long as the kernel keeps and the
// base name of argv[0] goes on from it (telltale-export for
// telltale-exporter), that name: the executable's own, which the kernel
// cut. Nothing else of the command line is taken.
func uncut(comm string, args []string) string {
	if len(comm) != commLen || len(args) == 0 {
		return comm
	}
	if n := path.Base(args[0]); len(n) > commLen && strings.HasPrefix(n, comm) && safeName.MatchString(n) {
		return n
	}
	return comm
}

// hashName is a content hash as a build cache names its files: 16 or more
// hex digits, with an optional -suffix (Go's build cache: <hash>-d).
var hashName = regexp.MustCompile(`^[0-9a-f]{16,}(-[a-z])?$`)

// opaque reports whether an executable's file name says nothing of the
// program: an anonymous in-memory file (memfd:…) or a content hash.
func opaque(base string) bool {
	return strings.HasPrefix(base, "memfd:") || hashName.MatchString(base)
}

// ownName is the name a program gives itself: the last element of its Go
// main package's path (or of its main module's, for a build of loose
// files), else the base of argv[0] when it is a plain name (and no hash or
// memfd itself); "" when neither says.
func ownName(goPath, goModule string, args []string) string {
	for _, p := range []string{goPath, goModule} {
		if p != "" && p != "command-line-arguments" {
			if n := path.Base(p); safeName.MatchString(n) {
				return n
			}
		}
	}
	if len(args) > 0 {
		if n := path.Base(args[0]); safeName.MatchString(n) && !opaque(n) {
			return n
		}
	}
	return ""
}

// scriptArg finds the program an interpreter runs and turns it into a name.
func scriptArg(kind interpreter, args []string, isFile func(string) bool) (string, bool) {
	file := func(arg string) (string, bool) {
		if name, ok := fileName(arg); ok && isFile(arg) {
			return name, true
		}
		return "", false
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case inlineOptions[kind][a] || a == "-":
			// The program comes from the command line or from standard
			// input: it has no name.
			return "", false
		case kind == python && a == "-m" && i+1 < len(args):
			return moduleName(args[i+1])
		case kind == python && strings.HasPrefix(a, "-m") && len(a) > 2:
			return moduleName(a[2:])
		case kind == java && (a == "-jar" || a == "--jar") && i+1 < len(args):
			return file(args[i+1])
		case kind == java && (a == "-m" || a == "--module") && i+1 < len(args):
			return className(args[i+1])
		case kind == php && a == "-f" && i+1 < len(args):
			return file(args[i+1])
		case valueOptions[kind][a]:
			i++
		case a == "--":
			if i+1 < len(args) {
				return file(args[i+1])
			}
			return "", false
		case strings.HasPrefix(a, "-") || strings.HasPrefix(a, "+"):
			// A flag without a value, or --flag=value.
		case kind == java:
			return mainClass(a)
		default:
			return file(a)
		}
	}
	return "", false
}

func fileName(arg string) (string, bool) {
	if strings.ContainsAny(arg, "=:;,?&#$ \t\n") {
		return "", false
	}
	if strings.HasPrefix(arg, "/dev/") || strings.HasPrefix(arg, "/proc/") {
		// A script read from a pipe (bash /dev/fd/3, <(…)) has no name.
		return "", false
	}
	dir, file := path.Split(arg)
	name := file
	if ext := path.Ext(file); scriptExtensions[ext] {
		name = strings.TrimSuffix(file, ext)
	}
	if genericScripts[name] && dir != "" {
		if d := path.Base(path.Clean(dir)); d != "." && d != "/" && d != "src" && d != "bin" && d != "lib" {
			name = d
		}
	}
	if !safeName.MatchString(name) {
		return "", false
	}
	return name, true
}

func moduleName(arg string) (string, bool) {
	arg = strings.TrimSuffix(arg, ".__main__")
	if !safeName.MatchString(arg) {
		return "", false
	}
	return arg, true
}

// mainClass names the class java runs: a class named the Java way, with
// its package (org.example.OrderService) or capitalised (Main); a lower-case
// word without a package is no class.
func mainClass(arg string) (string, bool) {
	if !strings.Contains(arg, ".") && (arg == "" || arg[0] < 'A' || arg[0] > 'Z') {
		return "", false
	}
	return className(arg)
}

func className(arg string) (string, bool) {
	if i := strings.LastIndexAny(arg, "/."); i >= 0 {
		arg = arg[i+1:]
	}
	if !safeName.MatchString(arg) {
		return "", false
	}
	return arg, true
}

// cleanName makes an executable or comm name usable as a label value.
func cleanName(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '_'
		}
		return r
	}, s)
}
