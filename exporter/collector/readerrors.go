package collector

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/telltale-dev/telltale/pkg/service"

	"github.com/telltale-dev/telltale/pkg/schema"
)

// Linux capability numbers (linux/capability.h) the exporter's reads of
// other processes' /proc files take.
const (
	capDACReadSearch = 2
	capSysPtrace     = 19
)

// logReadErrors logs each kind of /proc read failure once for the life of
// the exporter (the metric counts every one): which process's service it
// happened to first, and what would fix it.
func (e *Exporter) logReadErrors(s *Scrape, first map[service.ReadError]int) {
	for k, pid := range first {
		if e.loggedErrors[k] {
			continue
		}
		if e.loggedErrors == nil {
			e.loggedErrors = map[service.ReadError]bool{}
		}
		e.loggedErrors[k] = true
		who := fmt.Sprintf("pid %d", pid)
		if svc, ok := s.Services.ByPID[pid]; ok {
			who = fmt.Sprintf("pid %d of service %s", pid, svc)
		}
		e.logger.Warn("cannot read a /proc file; "+schema.ExporterReadErrors.Name+" counts every such failure, this is logged once",
			"file", k.File, "reason", k.Reason, "first", who, "fix", readErrorFix(k, e.ptraceCaps()))
	}
}

// readErrorFix says what would let the exporter read what it could not.
func readErrorFix(k service.ReadError, privileged bool) string {
	switch k.Reason {
	case "permission":
		if privileged {
			return "none needed from you: the exporter has CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, so the kernel protects this process from every reader (a sandbox's init, a process hardened with prctl or an LSM); the rest of it is still read"
		}
		return "run the exporter as root, or give it CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (the packaged systemd unit does: AmbientCapabilities), to read other users' processes"
	case "missing":
		if k.File == "io" {
			return "the kernel keeps no per-task I/O accounting (CONFIG_TASK_IO_ACCOUNTING): the process is kept, without disk counters"
		}
		return "the file is absent while the process is there (a kernel built without it, or a partial copy of /proc): the process is kept"
	case "malformed":
		return "the file did not parse (a copied or fake procfs, or a kernel format this exporter does not know); check --path.procfs points at a real procfs"
	default:
		return "the read failed; check --path.procfs and the kernel log"
	}
}

// ptraceCaps reports whether the exporter holds CAP_SYS_PTRACE and
// CAP_DAC_READ_SEARCH in its effective set (root usually does).
func (e *Exporter) ptraceCaps() bool {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && caps&(1<<capSysPtrace) != 0 && caps&(1<<capDACReadSearch) != 0
		}
	}
	return false
}
