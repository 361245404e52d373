package cli

import (
	"fmt"
	"sync"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/schollz/progressbar/v3"
)

// spinnerAfter is how long a synchronous run goes before it gets a
// spinner.
const spinnerAfter = time.Second

func (e *env) showProgress() bool { return e.g.progress || isTerminal(e.stderr) }

// withSpinner runs fn, drawing a spinner with the elapsed time on stderr
// once it has taken spinnerAfter.
func (e *env) withSpinner(desc string, fn func() error) error {
	if !e.showProgress() {
		return fn()
	}
	done := make(chan struct{})
	start := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		wait := time.NewTimer(spinnerAfter)
		defer wait.Stop()
		select {
		case <-done:
			return
		case <-wait.C:
		}
		// The bar's own spinner goroutine is off (interval 0): this one
		// drives it, and stops.
		bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(e.stderr), progressbar.OptionSpinnerType(14),
			progressbar.OptionSetElapsedTime(false), progressbar.OptionSetSpinnerChangeInterval(0))
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				bar.Clear()
				return
			case <-tick.C:
				bar.Describe(fmt.Sprintf("%s (%.1fs)", desc, time.Since(start).Seconds()))
				bar.Add(1)
			}
		}
	}()
	err := fn()
	close(done)
	wg.Wait()
	return err
}

// backfillBar draws a backfill's progress on stderr. It is made on the
// first report, which tells the total (a followed backfill's is not known
// before).
type backfillBar struct {
	e    *env
	desc string
	bar  *progressbar.ProgressBar
}

// newBackfillBar returns a backfill's bar, or nil when progress is not
// shown.
func (e *env) newBackfillBar(desc string) *backfillBar {
	if !e.showProgress() {
		return nil
	}
	return &backfillBar{e: e, desc: desc}
}

// progress is the OnProgress callback that advances the bar.
func (b *backfillBar) progress(p flowstone.BackfillProgress) {
	if b.bar == nil {
		b.bar = progressbar.NewOptions(p.Total, progressbar.OptionSetWriter(b.e.stderr), progressbar.OptionSetDescription(b.desc),
			progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(30), progressbar.OptionThrottle(50*time.Millisecond), progressbar.OptionSetRenderBlankState(true),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(b.e.stderr) }))
	}
	if p.Stats.Failed > 0 {
		b.bar.Describe(fmt.Sprintf("%s (%d failed)", b.desc, p.Stats.Failed))
	}
	b.bar.Set(p.Done)
}

// end finishes the bar (or leaves it, when the backfill's wait failed).
func (b *backfillBar) end(err error) {
	if b == nil || b.bar == nil {
		return
	}
	if err == nil {
		b.bar.Finish()
		return
	}
	b.bar.Exit()
	fmt.Fprintln(b.e.stderr)
}
