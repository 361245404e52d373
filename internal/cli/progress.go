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

// backfillBar returns a progress bar for a backfill of total partitions
// and the OnProgress callback that advances it, or nils when progress is
// not shown.
func (e *env) backfillBar(desc string, total int) (*progressbar.ProgressBar, func(flowstone.BackfillProgress)) {
	if !e.showProgress() {
		return nil, nil
	}
	bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(e.stderr), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(), progressbar.OptionSetElapsedTime(true), progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30), progressbar.OptionThrottle(50*time.Millisecond), progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }))
	return bar, func(p flowstone.BackfillProgress) {
		if p.Stats.Failed > 0 {
			bar.Describe(fmt.Sprintf("%s (%d failed)", desc, p.Stats.Failed))
		}
		bar.Set(p.Done)
	}
}
