// Package schema is the metric contract between Telltale's parts: the name,
// type, help and labels of every series the exporter and the detector expose
// and that pkg/kpi adds, the rule that tells a counter by its name, the score
// at which an anomaly alerts, and the labels that name an edge.
//
// The exporter and the detector build their descriptors from it; the
// datasource, the demo and the tests of the rules and dashboards read names
// from it, so a name is written once. Rules and dashboards are YAML and JSON:
// their tests derive what they must say from this package.
package schema

import (
	"fmt"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Type is a metric's type, as the exposition format names it.
type Type string

// The metric types Telltale exposes.
const (
	Counter   Type = "counter"
	Gauge     Type = "gauge"
	Histogram Type = "histogram"
)

// Part is the program that exposes a metric.
type Part string

// The parts of the contract.
const (
	Exporter Part = "exporter"
	Detector Part = "detector"
	// App is a series an application adds through pkg/kpi.
	App Part = "app"
)

// Metric is one metric family of the contract.
type Metric struct {
	Name string
	Help string
	Type Type
	Part Part
	// Labels are the family's variable labels, in the order the exposing
	// code passes their values. The detector's per-series families carry
	// the labels of the series they score beside these (Open).
	Labels []string
	// Open is true for a family whose series carry labels besides Labels.
	Open bool
}

// Desc is the family's descriptor, with its Labels as variable labels.
func (m Metric) Desc() *prometheus.Desc {
	return prometheus.NewDesc(m.Name, m.Help, m.Labels, nil)
}

// Opts are the family's options for client_golang's own metric types;
// convert them (prometheus.CounterOpts(m.Opts())).
func (m Metric) Opts() prometheus.Opts {
	return prometheus.Opts{Name: m.Name, Help: m.Help}
}

// SeriesNames are the names the family's samples are stored under: a
// histogram's _bucket, _sum and _count, else the family's own name.
func (m Metric) SeriesNames() []string {
	if m.Type == Histogram {
		return []string{m.Name + "_bucket", m.Name + "_sum", m.Name + "_count"}
	}
	return []string{m.Name}
}

// Label names of the contract.
const (
	// LabelService names a service on every per-service series.
	LabelService = "service"
	// LabelKind says how a service was found (ServiceInfo).
	LabelKind = "kind"
	// LabelMode is user or system CPU time (ServiceCPU).
	LabelMode = "mode"
	// LabelSwitchType is voluntary or involuntary (ServiceSwitches).
	LabelSwitchType = "type"
	// LabelProtocol and LabelPort name a listening port (ServicePortInfo);
	// LabelPort is also the server's port on an edge.
	LabelProtocol = "protocol"
	LabelPort     = "port"
	// LabelSyscall and LabelErrno name a system call and its error.
	LabelSyscall = "syscall"
	LabelErrno   = "errno"
	// LabelBuildID, LabelSource and LabelVersion identify a build.
	LabelBuildID = "build_id"
	LabelSource  = "source"
	LabelVersion = "version"
	// LabelHostname and LabelAddress describe the exporter's host.
	LabelHostname = "hostname"
	LabelAddress  = "address"
	// LabelClient, LabelClientAddress, LabelServer and LabelServerAddress
	// are an edge's ends: a service of the exporter's host by name, a side
	// elsewhere by address.
	LabelClient        = "client"
	LabelClientAddress = "client_address"
	LabelServer        = "server"
	LabelServerAddress = "server_address"
	// LabelMetric is the name of the series a detector family describes:
	// the detector's output drops __name__ and keeps the series' name here.
	// pkg/kpi's info series use it too, for the family that carries a KPI.
	LabelMetric = "metric"
	// LabelCollector names an exporter collector; LabelReason why
	// something was dropped or failed; LabelFile a procfs file.
	LabelCollector = "collector"
	LabelReason    = "reason"
	LabelFile      = "file"
	// LabelKPI, LabelUnit, LabelDirection and LabelType describe a KPI
	// (KPIInfo).
	LabelKPI       = "kpi"
	LabelUnit      = "unit"
	LabelDirection = "direction"
	LabelType      = "type"
)

// EdgeLabels are the labels of every edge series, in the exporter's order.
// Two series with the same values describe the same edge.
var EdgeLabels = []string{LabelClient, LabelClientAddress, LabelServer, LabelServerAddress, LabelPort}

// EdgeBy is EdgeLabels as a PromQL grouping list ("client, client_address, …").
func EdgeBy() string { return strings.Join(EdgeLabels, ", ") }

// AlertScore is the anomaly score at which a series counts as anomalous:
// the default threshold of alert rules and of the datasource's answers.
const AlertScore = 0.9

// counterSuffixes end the names of the series that count: OpenMetrics'
// counters, and a histogram's or summary's cumulative parts.
var counterSuffixes = []string{"_total", "_count", "_sum", "_bucket"}

// IsCounter reports whether a series name is a counter's by the naming
// conventions: what only grows and resets, to be read as a rate.
func IsCounter(name string) bool {
	for _, s := range counterSuffixes {
		if strings.HasSuffix(name, s) {
			return true
		}
	}
	return false
}

// ServicePrefix begins the name of every per-service family.
const ServicePrefix = "telltale_service_"

// DefaultSelector picks the series the detector scores when it is given no
// selectors: every per-service family but facts (_info), the start time (a
// restart shows in restarts_total) and histogram buckets (their _sum and
// _count are scored).
func DefaultSelector() string {
	return fmt.Sprintf(`{__name__=~"%s.+",__name__!~".+_info|.+_bucket|%s"}`, ServicePrefix, ServiceStartTime.Name)
}

func service(name string, typ Type, help string, labels ...string) Metric {
	return Metric{Name: ServicePrefix + name, Help: help, Type: typ, Part: Exporter, Labels: append([]string{LabelService}, labels...)}
}

func edge(name string, typ Type, help string) Metric {
	return Metric{Name: "telltale_edge_" + name, Help: help, Type: typ, Part: Exporter, Labels: EdgeLabels}
}

// The exporter's per-service families.
var (
	ServiceInfo           = service("info", Gauge, "A service found on this host, and how it was found (kind: systemd, docker, podman, containerd, kubernetes or process).", LabelKind)
	ServiceProcesses      = service("processes", Gauge, "Processes in the service.")
	ServiceCPU            = service("cpu_seconds_total", Counter, "CPU time used by the service's processes, including ones that have exited.", LabelMode)
	ServiceMemory         = service("resident_memory_bytes", Gauge, "Resident memory of the service's processes.")
	ServiceThreads        = service("threads", Gauge, "Threads in the service's processes.")
	ServiceFDs            = service("open_fds", Gauge, "Open file descriptors of the service's processes.")
	ServiceDiskRead       = service("disk_read_bytes_total", Counter, "Bytes the service read from storage (/proc/<pid>/io read_bytes).")
	ServiceDiskWritten    = service("disk_written_bytes_total", Counter, "Bytes the service caused to be written to storage (/proc/<pid>/io write_bytes).")
	ServiceReadSyscalls   = service("read_syscalls_total", Counter, "Read-type system calls made by the service (/proc/<pid>/io syscr).")
	ServiceWriteSyscalls  = service("write_syscalls_total", Counter, "Write-type system calls made by the service (/proc/<pid>/io syscw).")
	ServiceSwitches       = service("context_switches_total", Counter, "Context switches of the service's threads, by type (voluntary, involuntary).", LabelSwitchType)
	ServiceRunqueueWait   = service("runqueue_wait_seconds_total", Counter, "Time the service's threads were runnable but waited for a CPU (/proc/<pid>/schedstat).")
	ServiceRestarts       = service("restarts_total", Counter, "Times the service's oldest process was replaced by a new one, or the service came back after it was gone.")
	ServiceStartTime      = service("start_time_seconds", Gauge, "Start time of the service's oldest process, in seconds since the Unix epoch.")
	ServicePortInfo       = service("port_info", Gauge, "A port the service listens on (protocol: tcp, tcp6, udp, udp6). UDP ports in the ephemeral range are clients, not listed.", LabelProtocol, LabelPort)
	ServiceBuildInfo      = service("build_info", Gauge, "The build of the executable behind the service's oldest process: build_id and where it came from (source: gnu-build-id, go-build-id, go-build-info, sha256), with a version when the binary carries one.", LabelBuildID, LabelSource, LabelVersion)
	ServiceDeploys        = service("deploys_total", Counter, "Times the service's build identity changed while the exporter watched.")
	ServiceSyscalls       = service("syscalls_total", Counter, "System calls made by the service, by syscall name (eBPF).", LabelSyscall)
	ServiceSyscallErrors  = service("syscall_errors_total", Counter, "System calls of the service that returned an error, by syscall and errno name (eBPF).", LabelSyscall, LabelErrno)
	ServiceSyscallLatency = service("syscall_duration_seconds", Histogram, "Time the service's system calls took, from entry to exit, for a sample of them: the calls that started in a sampling window (about 1 in 16). _count is the calls timed; telltale_service_syscalls_total counts all (eBPF).", LabelSyscall)
)

// The exporter's host and edge families.
var (
	HostInfo        = Metric{Name: "telltale_host_info", Type: Gauge, Part: Exporter, Labels: []string{LabelHostname}, Help: "This host, by the kernel's host name."}
	HostAddressInfo = Metric{Name: "telltale_host_address_info", Type: Gauge, Part: Exporter, Labels: []string{LabelAddress}, Help: "An address of this host (loopback and link-local left out): an edge elsewhere whose server_address is this one leads to a service of this host."}
	HostCPUs        = Metric{Name: "telltale_host_cpus", Type: Gauge, Part: Exporter, Help: "CPUs of this host the kernel schedules on (the per-CPU lines of /proc/stat): the capacity its services' CPU use shares."}

	EdgeConnections  = edge("connections", Gauge, "Established TCP connections from client to server. A service on this host is named in client or server; a side elsewhere has its IP in client_address or server_address. port is the server's.")
	EdgeSent         = edge("sent_bytes_total", Counter, "Bytes the client sent to the server and the server acknowledged (tcp_info bytes_acked), over every connection of the edge.")
	EdgeReceived     = edge("received_bytes_total", Counter, "Bytes the client received from the server (tcp_info bytes_received), over every connection of the edge.")
	EdgeRTT          = edge("rtt_seconds", Gauge, "Mean smoothed round-trip time of the edge's current connections (tcp_info rtt).")
	EdgeRetransmits  = edge("retransmits_total", Counter, "Retransmitted TCP segments on the edge's connections, both directions when both ends are on this host.")
	EdgePeersDropped = Metric{Name: "telltale_edge_peers_dropped_total", Type: Counter, Part: Exporter, Help: "Connections whose remote address was counted under \"other\" because of --collector.edges.max-peers, summed over scrapes."}
)

// The exporter's own families.
var (
	// ExporterBuildInfo's help and labels are prometheus/common/version's.
	ExporterBuildInfo       = Metric{Name: ExporterProgram + "_build_info", Type: Gauge, Part: Exporter, Open: true}
	ExporterServices        = Metric{Name: "telltale_exporter_services", Type: Gauge, Part: Exporter, Help: "Services found in the last scrape, before the limit."}
	ExporterServicesDropped = Metric{Name: "telltale_exporter_services_dropped_total", Type: Counter, Part: Exporter, Help: "Services left out of scrapes because of --service.limit, summed over scrapes."}
	ExporterScanDuration    = Metric{Name: "telltale_exporter_scan_duration_seconds", Type: Gauge, Part: Exporter, Help: "How long the shared scan of processes took in the last scrape."}
	ExporterReadErrors      = Metric{Name: "telltale_exporter_read_errors_total", Type: Counter, Part: Exporter, Labels: []string{LabelFile, LabelReason}, Help: "Files under the procfs root that could not be read or parsed, by file and reason (permission, missing, malformed, read). Processes that exit mid-scan are not errors; a file missing for a process that is still there is, and the process is kept."}
	ExporterUnavailable     = Metric{Name: "telltale_exporter_collector_unavailable", Type: Gauge, Part: Exporter, Labels: []string{LabelCollector}, Help: "1 for an enabled collector that this host cannot run (see the exporter's log for why)."}
	ScrapeCollectorDuration = Metric{Name: "telltale_scrape_collector_duration_seconds", Type: Gauge, Part: Exporter, Labels: []string{LabelCollector}, Help: "How long a collector took in the last scrape."}
	ScrapeCollectorSuccess  = Metric{Name: "telltale_scrape_collector_success", Type: Gauge, Part: Exporter, Labels: []string{LabelCollector}, Help: "Whether a collector succeeded in the last scrape (1) or not (0)."}
	SyscallsDropped         = Metric{Name: "telltale_syscalls_dropped_total", Type: Counter, Part: Exporter, Labels: []string{LabelReason}, Help: "Syscalls or details the kernel side could not record, by reason: syscalls (map full), errors (errno map full), processes (identity map full), bad_numbers (outside the syscall table), latency_windows (sampling windows that could not open)."}
)

// The program names the build-info collectors are given
// (prometheus/common/version adds _build_info).
const (
	ExporterProgram = "telltale_exporter"
	DetectorProgram = "telltale_detector"
)

// The detector's per-series families: one series for each series it
// scores, with that series' labels and its name in LabelMetric.
var (
	AnomalyScore    = Metric{Name: "telltale_anomaly_score", Type: Gauge, Part: Detector, Open: true, Labels: []string{LabelMetric}, Help: "Anomaly score in [0,1] of the series named by the metric label and the other labels: the highest score among the samples scored in the detector's last round that had new samples of it. 0.9 is the default alerting threshold."}
	AnomalyExpected = Metric{Name: "telltale_anomaly_expected", Type: Gauge, Part: Detector, Open: true, Labels: []string{LabelMetric}, Help: "Value the detector expected for the series at its last sample; for a counter, the expected per-second rate."}
	AnomalyLower    = Metric{Name: "telltale_anomaly_lower", Type: Gauge, Part: Detector, Open: true, Labels: []string{LabelMetric}, Help: "Lower bound of the values the detector considers normal for the series at its last sample (per-second rate for a counter)."}
	AnomalyUpper    = Metric{Name: "telltale_anomaly_upper", Type: Gauge, Part: Detector, Open: true, Labels: []string{LabelMetric}, Help: "Upper bound of the values the detector considers normal for the series at its last sample (per-second rate for a counter)."}
)

// AnomalyFamilies are the detector's per-series families in the order its
// collector sends them: score, expected value, lower and upper bound.
var AnomalyFamilies = [4]Metric{AnomalyScore, AnomalyExpected, AnomalyLower, AnomalyUpper}

// The detector's own families.
var (
	// DetectorBuildInfo's help and labels are prometheus/common/version's.
	DetectorBuildInfo     = Metric{Name: DetectorProgram + "_build_info", Type: Gauge, Part: Detector, Open: true}
	DetectorSeries        = Metric{Name: "telltale_detector_series", Type: Gauge, Part: Detector, Help: "Series being scored by this replica."}
	DetectorSamplesScored = Metric{Name: "telltale_detector_samples_scored_total", Type: Counter, Part: Detector, Help: "Samples fed to the per-series detectors."}
	DetectorSeriesDropped = Metric{Name: "telltale_detector_series_dropped_total", Type: Counter, Part: Detector, Help: "Series not scored because --series.limit was reached, each counted once while it keeps being refused."}
	DetectorReadDuration  = Metric{Name: "telltale_detector_remote_read_duration_seconds", Type: Histogram, Part: Detector, Help: "Duration of remote reads, scoring of the streamed series included, successful or not."}
	DetectorReadErrors    = Metric{Name: "telltale_detector_remote_read_errors_total", Type: Counter, Part: Detector, Labels: []string{LabelReason}, Help: "Failed remote reads, by reason: http, timeout, content_type, checksum, frame_size, malformed, encoding, connection, other."}
	DetectorLag           = Metric{Name: "telltale_detector_lag_seconds", Type: Gauge, Part: Detector, Help: "Time since the end of the last successful read: how far behind the scores are. It grows while the remote-read endpoint is down."}
)

// The series pkg/kpi adds beside an application's KPI metric.
var (
	KPIInfo      = Metric{Name: "telltale_kpi_info", Type: Gauge, Part: App, Labels: []string{LabelKPI, LabelMetric, LabelUnit, LabelDirection, LabelType}, Help: "A business KPI this application declares: its name, the metric family that carries it, the unit of that metric's values, which direction is better and the metric type."}
	KPIObjective = Metric{Name: "telltale_kpi_objective", Type: Gauge, Part: App, Labels: []string{LabelKPI}, Help: "The objective of a business KPI: the value it should stay above (direction higher) or below (direction lower)."}
)

// All is every family of the contract.
var All = []Metric{
	ServiceInfo, ServiceProcesses, ServiceCPU, ServiceMemory, ServiceThreads, ServiceFDs,
	ServiceDiskRead, ServiceDiskWritten, ServiceReadSyscalls, ServiceWriteSyscalls,
	ServiceSwitches, ServiceRunqueueWait, ServiceRestarts, ServiceStartTime, ServicePortInfo,
	ServiceBuildInfo, ServiceDeploys, ServiceSyscalls, ServiceSyscallErrors, ServiceSyscallLatency,
	HostInfo, HostAddressInfo, HostCPUs,
	EdgeConnections, EdgeSent, EdgeReceived, EdgeRTT, EdgeRetransmits, EdgePeersDropped,
	ExporterBuildInfo, ExporterServices, ExporterServicesDropped, ExporterScanDuration, ExporterReadErrors,
	ExporterUnavailable, ScrapeCollectorDuration, ScrapeCollectorSuccess, SyscallsDropped,
	AnomalyScore, AnomalyExpected, AnomalyLower, AnomalyUpper,
	DetectorBuildInfo, DetectorSeries, DetectorSamplesScored, DetectorSeriesDropped,
	DetectorReadDuration, DetectorReadErrors, DetectorLag,
	KPIInfo, KPIObjective,
}

// Lookup returns the family called name, or false.
func Lookup(name string) (Metric, bool) {
	i := slices.IndexFunc(All, func(m Metric) bool { return m.Name == name })
	if i < 0 {
		return Metric{}, false
	}
	return All[i], true
}

// SeriesNames are the stored names of every family of part (all parts when
// part is empty), in All's order.
func SeriesNames(part Part) []string {
	var out []string
	for _, m := range All {
		if part == "" || m.Part == part {
			out = append(out, m.SeriesNames()...)
		}
	}
	return out
}
