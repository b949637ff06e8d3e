package wheel

// Benchmarks comparing the wheel with time.AfterFunc in the same process, per
// engine-notes §2 "What a fair benchmark looks like". Each metric has a
// sub-benchmark per implementation; compare ratios from one run, since
// absolute numbers on a 2-core box drift ±20%.
//
// Both implementations deliver through the same dispatcher: a non-blocking
// send of an int ID to a buffered channel drained by a fixed pool of workers.
// For AfterFunc that send runs in the goroutine the runtime starts per fire,
// for the wheel in the goroutine calling Advance.
//
// Every benchmark does a fixed amount of work per iteration and overrides
// ns/op with the per-timer figure, so run with -benchtime=1x:
//
//	BENCH_N=1000000 go test -run '^$' -bench . -benchtime=1x ./internal/wheel/
//
// BENCH_N is a comma-separated list of sizes (suffixes k and M allowed);
// default 100k. Lateness and mass-expiry benchmarks use the real clock.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const benchWorkers = 4

func benchSizes(b *testing.B) []int {
	env := os.Getenv("BENCH_N")
	if env == "" {
		return []int{100_000}
	}
	var ns []int
	for _, f := range strings.Split(env, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"):
			mult, f = 1_000, strings.TrimSuffix(f, "k")
		case strings.HasSuffix(f, "M"):
			mult, f = 1_000_000, strings.TrimSuffix(f, "M")
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			b.Fatalf("BENCH_N: bad size %q", f)
		}
		ns = append(ns, n*mult)
	}
	return ns
}

func sizeName(n int) string {
	switch {
	case n%1_000_000 == 0:
		return fmt.Sprintf("N=%dM", n/1_000_000)
	case n%1_000 == 0:
		return fmt.Sprintf("N=%dk", n/1_000)
	}
	return fmt.Sprintf("N=%d", n)
}

// dispatcher is the callback both implementations share: a non-blocking
// send to a bounded queue drained by benchWorkers goroutines.
type dispatcher struct {
	ch    chan int
	drops atomic.Int64
	wg    sync.WaitGroup
}

func newDispatcher(capacity int, recv func(id int)) *dispatcher {
	d := &dispatcher{ch: make(chan int, capacity)}
	for range benchWorkers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for id := range d.ch {
				recv(id)
			}
		}()
	}
	return d
}

func (d *dispatcher) send(id int) {
	select {
	case d.ch <- id:
	default:
		d.drops.Add(1)
	}
}

func (d *dispatcher) close() { close(d.ch); d.wg.Wait() }

// timerSet abstracts the two implementations. Handles are kept in a slice
// allocated up front (outside the measured heap) for both.
type timerSet interface {
	// schedule arms timer i; the wheel uses the absolute at, AfterFunc
	// the relative d (the caller computes both).
	schedule(i int, at time.Time, d time.Duration)
	stop(i int) bool
	// startStop arms and cancels one extra timer.
	startStop(at time.Time, d time.Duration)
	// run starts the driver, if any, and returns its stop function.
	run() func()
}

type wheelSet struct {
	w *Wheel[int]
	h []*Timer[int]
}

func newWheelSet(n int, d *dispatcher) *wheelSet {
	return &wheelSet{w: New(Options{}, time.Now(), d.send), h: make([]*Timer[int], n)}
}

func (s *wheelSet) schedule(i int, at time.Time, _ time.Duration) { s.h[i] = s.w.Schedule(at, i) }
func (s *wheelSet) stop(i int) bool                               { return s.w.Stop(s.h[i]) }
func (s *wheelSet) startStop(at time.Time, _ time.Duration)       { s.w.Stop(s.w.Schedule(at, -1)) }
func (s *wheelSet) run() func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.w.Run(ctx, nil) }()
	return func() { cancel(); <-done }
}

type stdSet struct {
	d *dispatcher
	h []*time.Timer
}

func newStdSet(n int, d *dispatcher) *stdSet { return &stdSet{d: d, h: make([]*time.Timer, n)} }

func (s *stdSet) schedule(i int, _ time.Time, d time.Duration) {
	s.h[i] = time.AfterFunc(d, func() { s.d.send(i) })
}
func (s *stdSet) stop(i int) bool { return s.h[i].Stop() }
func (s *stdSet) startStop(_ time.Time, d time.Duration) {
	time.AfterFunc(d, func() { s.d.send(-1) }).Stop()
}
func (s *stdSet) run() func() { return func() {} }

type implCase struct {
	name string
	new  func(n int, d *dispatcher) timerSet
}

var impls = []implCase{
	{"wheel", func(n int, d *dispatcher) timerSet { return newWheelSet(n, d) }},
	{"afterfunc", func(n int, d *dispatcher) timerSet { return newStdSet(n, d) }},
}

// offsets returns n durations uniform in [lo, hi), deterministic.
func offsets(n int, lo, hi time.Duration) []time.Duration {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	off := make([]time.Duration, n)
	for i := range off {
		off[i] = lo + time.Duration(rng.Int64N(int64(hi-lo)))
	}
	return off
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// stopAll cancels every armed timer so nothing outlives its benchmark.
func stopAll(s timerSet, n int) {
	for i := range n {
		s.stop(i)
	}
}

// BenchmarkHeapPerTimer: heap bytes per live timer, deadlines uniform in
// 10–70 min, HeapAlloc delta after GC divided by N (handle slice excluded
// for both; the wheel's own buckets included).
func BenchmarkHeapPerTimer(b *testing.B) {
	for _, n := range benchSizes(b) {
		off := offsets(n, 10*time.Minute, 70*time.Minute)
		for _, ic := range impls {
			b.Run(sizeName(n)+"/"+ic.name, func(b *testing.B) {
				d := newDispatcher(1024, func(int) {})
				defer d.close()
				var perTimer float64
				for range b.N {
					s := ic.new(n, d) // handles and wheel buckets: outside the delta
					before := heapAlloc()
					base := time.Now()
					for i, o := range off {
						s.schedule(i, base.Add(o), o)
					}
					after := heapAlloc()
					perTimer = float64(after-before) / float64(n)
					stopAll(s, n)
					runtime.KeepAlive(s)
				}
				b.ReportMetric(perTimer, "B/timer")
			})
		}
		b.Run(sizeName(n)+"/keyed", func(b *testing.B) {
			ids := make([]string, n)
			for i := range ids {
				ids[i] = "grant-" + strconv.Itoa(i)
			}
			var perTimer float64
			for range b.N {
				before := heapAlloc()
				k := NewKeyed(Options{}, time.Now(), func(string) {})
				base := time.Now()
				for i, o := range off {
					k.Arm(ids[i], base.Add(o))
				}
				after := heapAlloc()
				perTimer = float64(after-before) / float64(n)
				runtime.KeepAlive(k)
			}
			b.ReportMetric(perTimer, "B/timer")
		})
	}
}

// BenchmarkInsert: wall and CPU ns per insert of N timers, deadlines
// uniform in 10–70 min. AfterFunc gets a precomputed duration (no
// time.Until per call), which slightly favours it.
func BenchmarkInsert(b *testing.B) {
	for _, n := range benchSizes(b) {
		off := offsets(n, 10*time.Minute, 70*time.Minute)
		for _, ic := range impls {
			b.Run(sizeName(n)+"/"+ic.name, func(b *testing.B) {
				d := newDispatcher(1024, func(int) {})
				defer d.close()
				var wall, cpu time.Duration
				for range b.N {
					b.StopTimer()
					s := ic.new(n, d)
					runtime.GC()
					b.StartTimer()
					base := time.Now()
					c0 := cpuTime()
					for i, o := range off {
						s.schedule(i, base.Add(o), o)
					}
					cpu += cpuTime() - c0
					wall += time.Since(base)
					b.StopTimer()
					stopAll(s, n)
					b.StartTimer()
				}
				ops := float64(b.N) * float64(n)
				b.ReportMetric(float64(wall.Nanoseconds())/ops, "ns/op")
				b.ReportMetric(float64(cpu.Nanoseconds())/ops, "cpu-ns/op")
			})
		}
	}
}

// BenchmarkStartStop: with N live timers (10–70 min), arm a timer 1 s out
// and cancel it, 1M times per iteration (the RussellLuo churn benchmark).
func BenchmarkStartStop(b *testing.B) {
	const ops = 1 << 20
	for _, n := range benchSizes(b) {
		off := offsets(n, 10*time.Minute, 70*time.Minute)
		for _, ic := range impls {
			b.Run(sizeName(n)+"/"+ic.name, func(b *testing.B) {
				d := newDispatcher(1024, func(int) {})
				defer d.close()
				s := ic.new(n, d)
				base := time.Now()
				for i, o := range off {
					s.schedule(i, base.Add(o), o)
				}
				runtime.GC()
				b.ResetTimer()
				start := time.Now()
				for range b.N {
					at := time.Now().Add(time.Second)
					for range ops {
						s.startStop(at, time.Second)
					}
				}
				el := time.Since(start)
				b.StopTimer()
				stopAll(s, n)
				b.ReportMetric(float64(el.Nanoseconds())/float64(b.N*ops), "ns/op")
			})
		}
	}
}

func percentile(sorted []time.Duration, p float64) float64 {
	i := min(int(p*float64(len(sorted))), len(sorted)-1)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// newSet builds the named implementation.
func newSet(impl string, n int, d *dispatcher) (timerSet, error) {
	for _, ic := range impls {
		if ic.name == impl {
			return ic.new(n, d), nil
		}
	}
	return nil, fmt.Errorf("unknown impl %q", impl)
}

// lateness schedules n deadlines uniform in [1 s, 11 s] from now on the
// real clock (the wheel driven by Run) and measures, per item, the worker's
// receive time minus the deadline.
func lateness(impl string, n int) (map[string]float64, error) {
	off := offsets(n, time.Second, 11*time.Second)
	deadlines := make([]time.Time, n)
	late := make([]time.Duration, n)
	var got atomic.Int64
	all := make(chan struct{})
	d := newDispatcher(n, func(id int) {
		late[id] = time.Since(deadlines[id])
		if got.Add(1) == int64(n) {
			close(all)
		}
	})
	s, err := newSet(impl, n, d)
	if err != nil {
		return nil, err
	}
	stopRun := s.run()
	base := time.Now()
	c0 := cpuTime()
	for i, o := range off {
		deadlines[i] = base.Add(o)
		s.schedule(i, deadlines[i], time.Until(deadlines[i]))
	}
	insert := time.Since(base)
	select {
	case <-all:
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("only %d of %d delivered (%d dropped)", got.Load(), n, d.drops.Load())
	}
	cores := float64(cpuTime()-c0) / float64(time.Since(base))
	stopRun()
	d.close()
	slices.Sort(late)
	return map[string]float64{
		"p50-ms":    percentile(late, .50),
		"p99-ms":    percentile(late, .99),
		"p99.9-ms":  percentile(late, .999),
		"max-ms":    float64(late[n-1]) / float64(time.Millisecond),
		"cpu-cores": cores,
		"insert-ms": float64(insert) / float64(time.Millisecond),
		"drops":     float64(d.drops.Load()),
	}, nil
}

// memSampler polls runtime/metrics (no stop-the-world) every millisecond
// and keeps the peaks of total mapped memory (MemStats.Sys) and of memory
// in use by heap objects plus goroutine stacks.
type memSampler struct {
	stop             chan struct{}
	done             chan struct{}
	baseSys, baseUse uint64
	peakSys, peakUse uint64
	samples          []metrics.Sample
}

func startMemSampler() *memSampler {
	runtime.GC()
	m := &memSampler{
		stop: make(chan struct{}),
		done: make(chan struct{}),
		samples: []metrics.Sample{
			{Name: "/memory/classes/total:bytes"},
			{Name: "/memory/classes/heap/objects:bytes"},
			{Name: "/memory/classes/heap/stacks:bytes"},
		},
	}
	m.baseSys, m.baseUse = m.read()
	m.peakSys, m.peakUse = m.baseSys, m.baseUse
	go func() {
		defer close(m.done)
		tk := time.NewTicker(time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-tk.C:
				sys, use := m.read()
				m.peakSys, m.peakUse = max(m.peakSys, sys), max(m.peakUse, use)
			}
		}
	}()
	return m
}

func (m *memSampler) read() (sys, use uint64) {
	metrics.Read(m.samples)
	return m.samples[0].Value.Uint64(), m.samples[1].Value.Uint64() + m.samples[2].Value.Uint64()
}

// finish returns the peak deltas over the baseline in MB.
func (m *memSampler) finish() (sysMB, useMB float64) {
	close(m.stop)
	<-m.done
	sys, use := m.read()
	m.peakSys, m.peakUse = max(m.peakSys, sys), max(m.peakUse, use)
	return float64(m.peakSys-m.baseSys) / (1 << 20), float64(m.peakUse-m.baseUse) / (1 << 20)
}

// massExpiry schedules n deadlines within one millisecond, due shortly
// after scheduling ends, and waits until a worker has received the last one.
func massExpiry(impl string, n int) (map[string]float64, error) {
	recvAt := make([]time.Duration, n)
	var got atomic.Int64
	all := make(chan struct{})
	var due time.Time
	d := newDispatcher(n, func(id int) {
		recvAt[id] = time.Since(due)
		if got.Add(1) == int64(n) {
			close(all)
		}
	})
	ms := startMemSampler()
	s, err := newSet(impl, n, d)
	if err != nil {
		return nil, err
	}
	stopRun := s.run()
	// Leave time to schedule everything first (≈0.5 µs each).
	due = time.Now().Add(500*time.Millisecond + time.Duration(n)*time.Microsecond)
	rng := rand.New(rand.NewPCG(1, 1))
	for i := range n {
		at := due.Add(time.Duration(rng.Int64N(int64(time.Millisecond))))
		s.schedule(i, at, time.Until(at))
	}
	if time.Now().After(due) {
		return nil, fmt.Errorf("scheduling took longer than the lead time")
	}
	c0 := cpuTime()
	select {
	case <-all:
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("only %d of %d delivered (%d dropped)", got.Load(), n, d.drops.Load())
	}
	cpu := cpuTime() - c0
	sysMB, useMB := ms.finish()
	stopRun()
	d.close()
	slices.Sort(recvAt)
	runtime.KeepAlive(s)
	return map[string]float64{
		"last-ms":       float64(recvAt[n-1]) / float64(time.Millisecond),
		"p50-ms":        percentile(recvAt, .5),
		"cpu-s":         cpu.Seconds(),
		"peak-sys-MB":   sysMB,
		"peak-inuse-MB": useMB,
		"vmhwm-MB":      vmHWM(),
		"drops":         float64(d.drops.Load()),
	}, nil
}

// vmHWM is this process's peak resident set in MB (Linux), 0 if unknown.
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return float64(kb) / 1024
		}
	}
	return 0
}

const childEnv = "WHEEL_BENCH_CHILD"

var childBenches = map[string]func(impl string, n int) (map[string]float64, error){
	"lateness": lateness,
	"mass":     massExpiry,
}

// TestBenchChild is the body of the real-clock benchmarks, run in a fresh
// process per implementation so that neither inherits the other's (or an
// earlier benchmark's) garbage, zombie runtime timers or mapped memory
// (MemStats.Sys never shrinks). Skipped unless WHEEL_BENCH_CHILD is set to
// "bench,impl,n".
func TestBenchChild(t *testing.T) {
	spec := os.Getenv(childEnv)
	if spec == "" {
		t.Skip("benchmark helper; run via BenchmarkLateness / BenchmarkMassExpiry")
	}
	f := strings.Split(spec, ",")
	if len(f) != 3 || childBenches[f[0]] == nil {
		t.Fatalf("bad %s=%q", childEnv, spec)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		t.Fatal(err)
	}
	r, err := childBenches[f[0]](f[1], n)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(r)
	fmt.Printf("CHILDRESULT %s\n", out)
}

// runChildBench runs bench for every size and implementation in child
// processes and reports the child's metrics.
func runChildBench(b *testing.B, bench string) {
	for _, n := range benchSizes(b) {
		for _, ic := range impls {
			b.Run(sizeName(n)+"/"+ic.name, func(b *testing.B) {
				var r map[string]float64
				for range b.N {
					cmd := exec.Command(os.Args[0], "-test.run=^TestBenchChild$", "-test.count=1")
					cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%s,%d", childEnv, bench, ic.name, n))
					out, err := cmd.CombinedOutput()
					if err != nil {
						b.Fatalf("child: %v\n%s", err, out)
					}
					_, line, ok := strings.Cut(string(out), "CHILDRESULT ")
					line, _, _ = strings.Cut(line, "\n")
					if !ok || json.Unmarshal([]byte(line), &r) != nil {
						b.Fatalf("child output:\n%s", out)
					}
				}
				for unit, v := range r {
					b.ReportMetric(v, unit)
				}
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}

// BenchmarkLateness: N deadlines uniform in [1 s, 11 s], real clock, the
// wheel driven by Run. Lateness = worker receive time - deadline: p50, p99,
// p99.9, max, CPU cores used, and how long scheduling took.
func BenchmarkLateness(b *testing.B) { runChildBench(b, "lateness") }

// BenchmarkMassExpiry: N deadlines within the same millisecond (the 09:00
// cohort of 8 h grants). Reports the time from that millisecond until the
// last item is received by a worker (last-ms), CPU seconds meanwhile, and
// memory growth over the run: peak MemStats.Sys and peak heap objects +
// goroutine stacks (both sampled every 1 ms via runtime/metrics), plus the
// child's peak RSS (VmHWM, absolute). The queue holds N so nothing is
// dropped.
func BenchmarkMassExpiry(b *testing.B) { runChildBench(b, "mass") }
