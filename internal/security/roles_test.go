package security_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowstone-go/flowstone"
	"github.com/flowstone-go/flowstone/client"
	"github.com/flowstone-go/flowstone/protocol"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// adminVerbs are the API verbs that change or decide something on the
// fleet.
var adminVerbs = []string{protocol.VerbInvalidate, protocol.VerbCancel, protocol.VerbApprove, protocol.VerbReject, protocol.VerbSignal}

// TestClientRoleRunsEveryVerb uses every verb of package client as the
// client role: runs that wait for their end, cached runs, results inline,
// from the JetStream object store and staged from files, status, events,
// backfills with progress, cancel and invalidate. None needs more than
// the role allows.
func TestClientRoleRunsEveryVerb(t *testing.T) {
	f := sharedFleet(t)
	c, ctx, part := f.connectClient(t, roleClient), testCtx(t), uniq(t)

	res, err := c.Run(ctx, "sec", "small", flowstone.Partition(part))
	if err != nil {
		t.Fatalf("uncached run: %v", err)
	}
	var s string
	if err := res.Decode(&s); err != nil || s != "hello "+part || res.Cached {
		t.Fatalf("uncached run = %q (cached %v), %v", s, res.Cached, err)
	}
	if res, err = c.Run(ctx, "sec", "small", flowstone.Partition(part)); err != nil || !res.Cached {
		t.Fatalf("cached run: cached %v, %v", res != nil && res.Cached, err)
	}
	// A run whose dependencies run too, and a scatter across the fleet.
	if _, err := c.Run(ctx, "example", "sum"); err != nil {
		t.Fatalf("example.sum: %v", err)
	}
	if _, err := c.Run(ctx, "dynamic", "report"); err != nil {
		t.Fatalf("dynamic.report (a scatter): %v", err)
	}

	want := bytes.Repeat([]byte("0123456789abcdef"), bigSize/16)
	for _, asset := range []string{"big", "bigfile"} {
		if _, err := c.Run(ctx, "sec", asset, flowstone.Partition(part)); err != nil {
			t.Fatalf("run %s: %v", asset, err)
		}
		res, err := c.Get(ctx, "sec", asset, flowstone.Partition(part))
		if err != nil {
			t.Fatalf("get %s: %v", asset, err)
		}
		got, err := res.Bytes(ctx)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("get %s: %d bytes, %v; want the %d bytes it stored", asset, len(got), err, len(want))
		}
	}

	if ok, err := c.Exists(ctx, "sec", "small", flowstone.Partition(part)); err != nil || !ok {
		t.Fatalf("exists = %v, %v", ok, err)
	}
	if st, err := c.Status(ctx, "sec", "small", flowstone.Partition(part)); err != nil || st.State != flowstone.StateCompleted {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if g, err := c.Graph(ctx, "example"); err != nil || !strings.Contains(g, "sum") {
		t.Fatalf("graph = %q, %v", g, err)
	}
	if as, err := c.Assets(ctx, "sec"); err != nil || !slices.Contains(as, "small") {
		t.Fatalf("assets = %v, %v", as, err)
	}
	if _, err := c.AssetInfo(ctx, "sec", "daily"); err != nil {
		t.Fatalf("info: %v", err)
	}
	if ps, err := c.Pipelines(ctx); err != nil || len(ps) != len(testPipelines()) {
		t.Fatalf("pipelines = %v, %v", ps, err)
	}

	// Backfill with progress, each partition reported as it ends, then
	// followed again by id.
	days := freshDays(3)
	var seen []string
	stats, err := c.Backfill(ctx, "sec", "daily", flowstone.Partitions(days...), flowstone.Parallel(2),
		flowstone.OnProgress(func(p flowstone.BackfillProgress) { seen = append(seen, p.Partition) }))
	if err != nil || stats.Succeeded != len(days) {
		t.Fatalf("backfill = %+v, %v", stats, err)
	}
	slices.Sort(seen)
	if !slices.Equal(seen, days) {
		t.Errorf("backfill reported %v, want each of %v once", seen, days)
	}
	if again, err := c.FollowBackfill(ctx, stats.ID); err != nil || again.Succeeded != len(days) {
		t.Fatalf("follow backfill %s = %+v, %v", stats.ID, again, err)
	}

	// Cancel a running asset, then invalidate what ran.
	job, err := c.Run(ctx, "sec", "slow", flowstone.Partition(part), flowstone.Async())
	if err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, func() (flowstone.State, error) {
		st, err := c.Status(ctx, "sec", "slow", flowstone.Partition(part))
		return st.State, err
	}, flowstone.StateRunning)
	if err := c.Cancel(ctx, "sec", "slow", flowstone.Partition(part)); err != nil {
		t.Fatalf("cancel %s: %v", job.RunID, err)
	}
	waitState(t, ctx, func() (flowstone.State, error) {
		st, err := c.Status(ctx, "sec", "slow", flowstone.Partition(part))
		return st.State, err
	}, flowstone.StateCancelled)
	if n, err := c.Invalidate(ctx, "sec", "small", flowstone.Partition(part)); err != nil || n != 1 {
		t.Fatalf("invalidate = %d, %v", n, err)
	}
	if ok, err := c.Exists(ctx, "sec", "small", flowstone.Partition(part)); err != nil || ok {
		t.Fatalf("exists after invalidate = %v, %v", ok, err)
	}
}

// waitState asks state until it returns want.
func waitState(t *testing.T, ctx context.Context, state func() (flowstone.State, error), want flowstone.State) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := state()
		if err == nil && got == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("state = %s, %v; want %s", got, err, want)
		case <-tick.C:
		}
	}
}

// TestClientRoleWatchesEvents follows a pipeline's events as the client
// role.
func TestClientRoleWatchesEvents(t *testing.T) {
	f := sharedFleet(t)
	c, ctx := f.connectClient(t, roleClient), testCtx(t)
	events := make(chan protocol.Event, 1024)
	wctx, stop := context.WithCancel(ctx)
	watched := make(chan error, 1)
	go func() {
		watched <- c.Watch(wctx, "sec", func(e protocol.Event) {
			select {
			case events <- e:
			default:
			}
		})
	}()
	defer func() {
		stop()
		if err := <-watched; err != nil {
			t.Errorf("watch: %v", err)
		}
	}()
	// Watch subscribes as it starts: a run started before that is not
	// seen, so run until one is.
	for attempt := 1; ; attempt++ {
		part := uniq(t)
		if _, err := c.Run(ctx, "sec", "small", flowstone.Partition(part)); err != nil {
			t.Fatal(err)
		}
		if sawRun(ctx, events, part) {
			return
		}
		if attempt == 5 {
			t.Fatal("watch saw no event of 5 runs")
		}
	}
}

// sawRun reports whether an event of partition part arrives within a few
// seconds.
func sawRun(ctx context.Context, events <-chan protocol.Event, part string) bool {
	wait, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for {
		select {
		case e := <-events:
			if e.Partition == part {
				return true
			}
		case <-wait.Done():
			return false
		}
	}
}

// TestClientRoleMayCallEveryVerb sends each verb's subject as the client
// role: the server lets each through (deploy/nats.conf names every verb;
// one added to the protocol fails here until it is added there).
func TestClientRoleMayCallEveryVerb(t *testing.T) {
	p := sharedFleet(t).probeAs(t, roleClient)
	for _, verb := range protocol.Verbs() {
		p.allowRequest(t, protocol.APIPrefix+"."+verb, []byte("{}"))
	}
}

// TestClientRoleCannotTouchTheFleet tries, as the client role, what only
// the fleet's daemons may do: every attempt is refused, and nothing it
// tried is stored. In particular the client cannot forge a record: get
// returns the value the worker stored.
func TestClientRoleCannotTouchTheFleet(t *testing.T) {
	f := sharedFleet(t)
	c, ctx, part := f.connectClient(t, roleClient), testCtx(t), uniq(t)
	if _, err := c.Run(ctx, "sec", "small", flowstone.Partition(part)); err != nil {
		t.Fatal(err)
	}
	p := f.probeAs(t, roleClient)
	key := "mat.sec.small." + flowstone.PartitionToken(part)
	forged := []byte(`{"pipeline":"sec","asset":"small","partition":"` + part + `","state":"completed","value":{"storage":"inline","inline":"\"forged\""}}`)
	task, _ := json.Marshal(protocol.Task{ID: "forged-task", RunID: "forged-run", Pipeline: "forged", Asset: "x", Partition: "default"})

	publishes := []struct{ name, subject string }{
		{"publish a task", protocol.TaskSubject("forged", 0)},
		{"publish a scatter item batch", protocol.ItemSubject("forged")},
		{"publish a completion", protocol.DoneSubject("forged")},
		{"ack a task", "$JS.ACK.FLOWSTONE_TASKS.tasks_sec_p0.1.1.1.1.0"},
		{"forge a materialization record", "$KV." + protocol.MaterializationsBucket + "." + key},
		{"write the runs bucket", "$KV." + protocol.RunsBucket + ".run.forged"},
		{"write a manifest", "$KV." + protocol.ManifestsBucket + ".sec.forged"},
		{"write a result", "$O." + protocol.ResultsBucket + ".C.forged"},
		{"cancel a run behind the API", protocol.CancelSubject("forged-run")},
		{"schedule a run", protocol.ScheduleSubject("forged-run")},
		{"forge a reply", "_INBOX.forged.reply"},
		{"pull tasks", "$JS.API.CONSUMER.MSG.NEXT.FLOWSTONE_TASKS.tasks_sec_p0"},
		{"create a consumer on the tasks", "$JS.API.CONSUMER.CREATE.FLOWSTONE_TASKS.mine.flowstone.task.sec.p0"},
		{"create a consumer on the records", "$JS.API.CONSUMER.CREATE.KV_flowstone_materializations.mine"},
		{"delete the tasks stream", "$JS.API.STREAM.DELETE.FLOWSTONE_TASKS"},
		{"purge the records", "$JS.API.STREAM.PURGE.KV_flowstone_materializations"},
		{"delete a record's message", "$JS.API.STREAM.MSG.DELETE.KV_flowstone_materializations"},
		{"update a stream", "$JS.API.STREAM.UPDATE.FLOWSTONE_DONE"},
		{"read a stream's info", "$JS.API.STREAM.INFO.FLOWSTONE_TASKS"},
	}
	for _, tc := range publishes {
		t.Run(tc.name, func(t *testing.T) {
			body := forged
			if strings.HasPrefix(tc.subject, "flowstone.task.") {
				body = task
			}
			p.denyPublish(t, tc.subject, body)
		})
	}
	for _, subject := range []string{protocol.TaskSubjects, protocol.DoneSubjects, protocol.APISubjects, protocol.CancelSubjects, "$KV.flowstone_scatter.>", "$O.flowstone_results.>"} {
		t.Run("subscribe "+subject, func(t *testing.T) { p.denySubscribe(t, subject) })
	}

	// Nothing was stored.
	admin := f.adminJS(t)
	for _, tc := range []struct{ stream, subject string }{
		{protocol.TaskStream, protocol.TaskSubject("forged", 0)},
		{protocol.DoneStream, protocol.DoneSubject("forged")},
		{"KV_" + protocol.RunsBucket, "$KV." + protocol.RunsBucket + ".run.forged"},
	} {
		s, err := admin.Stream(ctx, tc.stream)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := s.GetLastMsgForSubject(ctx, tc.subject); !errors.Is(err, jetstream.ErrMsgNotFound) {
			t.Errorf("%s holds %v on %s (%v), want nothing", tc.stream, m, tc.subject, err)
		}
	}
	res, err := c.Get(ctx, "sec", "small", flowstone.Partition(part))
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := res.Decode(&s); err != nil || s != "hello "+part {
		t.Fatalf("get after the forgery = %q, %v; want the worker's value", s, err)
	}
}

// adminJS is JetStream as the admin role.
func (f *fleet) adminJS(t *testing.T) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(f.probeAs(t, roleAdmin).Conn)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestWorkerRoleCannotCallTheAPI tries, as the worker role, every API verb
// (invalidate, cancel and the approvals' first) and what only
// coordinators and clients do: each is refused.
func TestWorkerRoleCannotCallTheAPI(t *testing.T) {
	p := sharedFleet(t).probeAs(t, roleWorker)
	// The verbs that decide first, then the others.
	verbs := slices.Clone(adminVerbs)
	for _, v := range protocol.Verbs() {
		if !slices.Contains(verbs, v) {
			verbs = append(verbs, v)
		}
	}
	for _, verb := range verbs {
		t.Run(verb, func(t *testing.T) { p.denyPublish(t, protocol.APIPrefix+"."+verb, []byte("{}")) })
	}
	for _, tc := range []struct{ name, subject string }{
		{"publish a task", protocol.TaskSubject("sec", 3)},
		{"cancel a run", protocol.CancelSubject("some-run")},
		{"schedule a run", protocol.ScheduleSubject("some-run")},
		{"start a scheduled run", protocol.StartSubject("sec")},
		{"write a run record", "$KV." + protocol.RunsBucket + ".run.some-run"},
		{"write a staged copy", "$O." + protocol.StagingBucket + ".C.x"},
		{"tell coordinators to cancel", "flowstone.ctl.cancel"},
		{"delete the tasks stream", "$JS.API.STREAM.DELETE.FLOWSTONE_TASKS"},
		{"purge the records", "$JS.API.STREAM.PURGE.KV_flowstone_materializations"},
		{"drop a task", "$JS.API.STREAM.MSG.DELETE.FLOWSTONE_TASKS"},
		{"consume the schedules", "$JS.API.CONSUMER.CREATE.FLOWSTONE_SCHEDULES.mine.flowstone.start.>"},
	} {
		t.Run(tc.name, func(t *testing.T) { p.denyPublish(t, tc.subject, []byte("{}")) })
	}
	for _, subject := range []string{protocol.APISubjects, "flowstone.api.run", "$SRV.>", protocol.DoneSubjects} {
		t.Run("subscribe "+subject, func(t *testing.T) { p.denySubscribe(t, subject) })
	}
}

// TestCoordinatorRoleCannotRunTasks tries, as the coordinator role, what
// only workers do, and calling the API: each is refused.
func TestCoordinatorRoleCannotRunTasks(t *testing.T) {
	p := sharedFleet(t).probeAs(t, roleCoordinator)
	for _, tc := range []struct{ name, subject string }{
		{"pull tasks", "$JS.API.CONSUMER.MSG.NEXT.FLOWSTONE_TASKS.tasks_sec_p0"},
		{"create a consumer on the tasks", "$JS.API.CONSUMER.CREATE.FLOWSTONE_TASKS.mine.flowstone.task.sec.p0"},
		{"ack a task", "$JS.ACK.FLOWSTONE_TASKS.tasks_sec_p0.1.1.1.1.0"},
		{"call invalidate", protocol.APISubject(protocol.VerbInvalidate)},
		{"call run", protocol.APISubject(protocol.VerbRun)},
		{"write a scatter outcome", "$KV.flowstone_scatter.x.0"},
		{"publish an unsolicited reply", "_INBOX.someone.reply"},
		{"delete the tasks stream", "$JS.API.STREAM.DELETE.FLOWSTONE_TASKS"},
	} {
		t.Run(tc.name, func(t *testing.T) { p.denyPublish(t, tc.subject, []byte("{}")) })
	}
	t.Run("subscribe to the tasks", func(t *testing.T) { p.denySubscribe(t, protocol.TaskSubjects) })
	t.Run("serve the API outside its queue group", func(t *testing.T) { p.denySubscribe(t, protocol.APISubjects) })
}

// TestAdminRoleManagesJetStream checks the admin role's allowances: the
// JetStream API on the fleet's streams, every verb.
func TestAdminRoleManagesJetStream(t *testing.T) {
	f := sharedFleet(t)
	ctx := testCtx(t)
	js := f.adminJS(t)
	for _, name := range []string{protocol.TaskStream, protocol.DoneStream, "KV_" + protocol.MaterializationsBucket} {
		if _, err := js.Stream(ctx, name); err != nil {
			t.Errorf("stream info %s as admin: %v", name, err)
		}
	}
	p := f.probeAs(t, roleAdmin)
	for _, verb := range protocol.Verbs() {
		p.allowRequest(t, protocol.APIPrefix+"."+verb, []byte("{}"))
	}
	c := f.connectClient(t, roleAdmin)
	if _, err := c.Run(ctx, "sec", "small", flowstone.Partition(uniq(t))); err != nil {
		t.Fatalf("run as admin: %v", err)
	}
}

// TestDaemonsNeedNoMoreThanTheirRoles runs the fleet's work (runs,
// scatters, large results, a scheduled run cancelled, an approval gate,
// invalidations)
// and checks that the server refused the coordinator and the worker
// nothing along the way: their roles allow all they do.
func TestDaemonsNeedNoMoreThanTheirRoles(t *testing.T) {
	f := sharedFleet(t)
	c, ctx, part := f.connectClient(t, roleClient), testCtx(t), uniq(t)
	for _, asset := range []string{"small", "big", "bigfile"} {
		if _, err := c.Run(ctx, "sec", asset, flowstone.Partition(part)); err != nil {
			t.Fatal(err)
		}
	}
	// Reading a value re-materialized with Force, and its dependents'.
	if _, err := c.Run(ctx, "daily_sales", "revenue", flowstone.Partition("2031-02-01"), flowstone.Force()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(ctx, "dynamic", "report", flowstone.Force()); err != nil {
		t.Fatal(err)
	}
	// A scheduled run, cancelled before its time.
	at := time.Now().Add(time.Hour)
	if _, err := c.Run(ctx, "sec", "small", flowstone.Partition(part+"-later"), flowstone.ScheduledAt(at), flowstone.Async()); err != nil {
		t.Fatal(err)
	}
	if err := c.Cancel(ctx, "sec", "small", flowstone.Partition(part+"-later")); err != nil {
		t.Fatalf("cancel the scheduled run: %v", err)
	}
	// A run behind an approval gate, approved.
	if _, err := c.Run(ctx, "sec", "gated", flowstone.Partition(part), flowstone.Async()); err != nil {
		t.Fatal(err)
	}
	waitState(t, ctx, func() (flowstone.State, error) {
		st, err := c.Status(ctx, "sec", "gated", flowstone.Partition(part))
		return st.State, err
	}, flowstone.StateWaitingApproval)
	if err := c.Approve(ctx, "sec", "gated", flowstone.Partition(part)); err != nil {
		t.Fatalf("approve: %v", err)
	}
	waitState(t, ctx, func() (flowstone.State, error) {
		st, err := c.Status(ctx, "sec", "gated", flowstone.Partition(part))
		return st.State, err
	}, flowstone.StateCompleted)
	// Invalidate with the results stored in both stores.
	for _, asset := range []string{"big", "bigfile"} {
		if _, err := c.Invalidate(ctx, "sec", asset, flowstone.Partition(part)); err != nil {
			t.Fatal(err)
		}
	}
	// The daemons' last requests are answered by now; a violation would
	// have been logged before the answer.
	for _, conn := range []string{coordinatorConn, workerConn} {
		if v := f.log.violations(conn); len(v) > 0 {
			t.Errorf("the server refused %s:\n%s", conn, strings.Join(v, "\n"))
		}
	}
}

// TestRefusedCallsFailAtOnce uses the client with another role's user (the
// worker's, which may call no verb nor watch events): each call fails at
// once with a configuration error naming the refused subject, instead of
// waiting for a reply that cannot come.
func TestRefusedCallsFailAtOnce(t *testing.T) {
	f := sharedFleet(t)
	c, ctx := f.connectClient(t, roleWorker), testCtx(t)
	start := time.Now()
	_, err := c.Status(ctx, "sec", "small", flowstone.Partition("x"))
	if !errors.Is(err, flowstone.ErrConfig) || !strings.Contains(err.Error(), `flowstone.api.status`) ||
		!strings.Contains(err.Error(), "permissions violation") {
		t.Fatalf("status as the worker: %v; want a config error naming flowstone.api.status", err)
	}
	if took := time.Since(start); took > client.TimeoutDefault/2 {
		t.Errorf("the refused status took %v: it waited for its timeout", took)
	}
	err = c.Watch(ctx, "sec", func(protocol.Event) {})
	if !errors.Is(err, flowstone.ErrConfig) || !strings.Contains(err.Error(), "flowstone.event.sec.>") {
		t.Fatalf("watch as the worker: %v; want a config error naming the events' subject", err)
	}
}

// TestWrongPasswordSaysSo connects with a wrong password: the error says
// which credentials to give, and not the password.
func TestWrongPasswordSaysSo(t *testing.T) {
	f := sharedFleet(t)
	_, err := client.Connect(f.url, client.WithNATSOptions(nats.UserInfo(roleClient, "wrong-"+passwords[roleClient])))
	if !errors.Is(err, flowstone.ErrUnavailable) || !strings.Contains(err.Error(), "NATS_PASSWORD") || strings.Contains(err.Error(), passwords[roleClient]) {
		t.Fatalf("connect with a wrong password: %v", err)
	}
}
