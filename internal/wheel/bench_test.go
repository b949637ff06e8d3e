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

// BenchmarkLateness: N deadlines uniform in [1 s, 11 s] from now, real
// clock, wheel driven by Run. Lateness = worker receive time - deadline.
func BenchmarkLateness(b *testing.B) {
	for _, n := range benchSizes(b) {
		off := offsets(n, time.Second, 11*time.Second)
		for _, ic := range impls {
			b.Run(sizeName(n)+"/"+ic.name, func(b *testing.B) {
				var p50, p99, p999, worst, cores float64
				for range b.N {
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
					s := ic.new(n, d)
					stopRun := s.run()
					base := time.Now()
					c0 := cpuTime()
					for i, o := range off {
						deadlines[i] = base.Add(o)
						s.schedule(i, deadlines[i], time.Until(deadlines[i]))
					}
					select {
					case <-all:
					case <-time.After(time.Minute):
						b.Fatalf("only %d of %d delivered (%d dropped)", got.Load(), n, d.drops.Load())
					}
					cores = float64(cpuTime()-c0) / float64(time.Since(base))
					stopRun()
					d.close()
					slices.Sort(late)
					p50, p99, p999 = percentile(late, .50), percentile(late, .99), percentile(late, .999)
					worst = float64(late[n-1]) / float64(time.Millisecond)
				}
				b.ReportMetric(p50, "p50-ms")
				b.ReportMetric(p99, "p99-ms")
				b.ReportMetric(p999, "p99.9-ms")
				b.ReportMetric(worst, "max-ms")
				b.ReportMetric(cores, "cpu-cores")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
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

// massResult is what one mass-expiry run measures; MaxRSSMB is filled in
// by the parent from the child's rusage.
type massResult struct {
	LastMs, P50Ms, SysMB, InuseMB, MaxRSSMB, CPUs float64
	Drops                                         int64
}

// massExpiry schedules n deadlines within one millisecond and waits until a
// worker has received the last one.
func massExpiry(impl string, n int) (massResult, error) {
	var r massResult
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
	var s timerSet
	switch impl {
	case "wheel":
		s = newWheelSet(n, d)
	case "afterfunc":
		s = newStdSet(n, d)
	default:
		return r, fmt.Errorf("unknown impl %q", impl)
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
		return r, fmt.Errorf("scheduling took longer than the lead time")
	}
	c0 := cpuTime()
	select {
	case <-all:
	case <-time.After(time.Minute):
		return r, fmt.Errorf("only %d of %d delivered (%d dropped)", got.Load(), n, d.drops.Load())
	}
	r.CPUs = (cpuTime() - c0).Seconds()
	r.SysMB, r.InuseMB = ms.finish()
	stopRun()
	d.close()
	slices.Sort(recvAt)
	r.LastMs = float64(recvAt[n-1]) / float64(time.Millisecond)
	r.P50Ms = percentile(recvAt, .5)
	r.Drops = d.drops.Load()
	runtime.KeepAlive(s)
	return r, nil
}

const massChildEnv = "WHEEL_MASS_CHILD"

// TestMassExpiryChild is the body of BenchmarkMassExpiry, run in a fresh
// process so that peak memory is not hidden by what earlier benchmarks
// mapped (MemStats.Sys never shrinks). Skipped unless WHEEL_MASS_CHILD is
// set to "impl,n".
func TestMassExpiryChild(t *testing.T) {
	spec := os.Getenv(massChildEnv)
	if spec == "" {
		t.Skip("benchmark helper; run via BenchmarkMassExpiry")
	}
	impl, nStr, _ := strings.Cut(spec, ",")
	n, err := strconv.Atoi(nStr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := massExpiry(impl, n)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(r)
	fmt.Printf("MASSRESULT %s\n", out)
}

// BenchmarkMassExpiry: N deadlines within the same millisecond (the 09:00
// cohort of 8 h grants). Reports the time from that millisecond until the
// last item is received by a worker, CPU seconds spent meanwhile, and peak
// memory growth while scheduling and firing: MemStats.Sys (sampled), heap
// objects + goroutine stacks (sampled) and the child's peak RSS. Each run
// is a fresh child process. The queue holds N so nothing is dropped.
func BenchmarkMassExpiry(b *testing.B) {
	for _, n := range benchSizes(b) {
		for _, ic := range impls {
			b.Run(sizeName(n)+"/"+ic.name, func(b *testing.B) {
				var r massResult
				for range b.N {
					cmd := exec.Command(os.Args[0], "-test.run=^TestMassExpiryChild$", "-test.count=1")
					cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d", massChildEnv, ic.name, n))
					out, err := cmd.CombinedOutput()
					if err != nil {
						b.Fatalf("child: %v\n%s", err, out)
					}
					_, line, ok := strings.Cut(string(out), "MASSRESULT ")
					line, _, _ = strings.Cut(line, "\n")
					if !ok || json.Unmarshal([]byte(line), &r) != nil {
						b.Fatalf("child output:\n%s", out)
					}
					if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
						r.MaxRSSMB = float64(ru.Maxrss) / 1024 // KiB on Linux
					}
				}
				b.ReportMetric(r.LastMs, "last-ms")
				b.ReportMetric(r.P50Ms, "p50-ms")
				b.ReportMetric(r.CPUs, "cpu-s")
				b.ReportMetric(r.SysMB, "peak-sys-MB")
				b.ReportMetric(r.InuseMB, "peak-inuse-MB")
				b.ReportMetric(r.MaxRSSMB, "maxrss-MB")
				b.ReportMetric(float64(r.Drops), "drops")
				b.ReportMetric(0, "ns/op")
			})
		}
	}
}
