// Package check is filehub's consistency check, its fsck (like git fsck
// and restic check): it verifies that every blob record's object exists
// with the right size (and, when asked, the right content), that every
// reference count equals the number of file records pointing at the blob,
// and that the event and audit logs have no gaps in their IDs. With Repair
// it fixes what is safe to fix and audits each fix.
//
// It reads through the stores' ordinary interfaces and filehub.Checker, in
// bounded memory (pages of blob records merged with the sorted walk of the
// objects), so it can run against a live server's stores: every finding a
// concurrent upload, purge or sweep could explain is re-checked before it
// is reported.
//
// Its report is the wire type api.CheckReport itself: the check has no
// other consumer than the HTTP route and the CLI, so a domain copy would
// only be translated field for field.
package check

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/filehub/filehub"
	"github.com/filehub/filehub/api"
)

// Store is what the check needs of a metadata store: both backends
// implement it.
type Store interface {
	filehub.MetaStore
	filehub.Checker
	filehub.AuditLog
	filehub.BlobSweeper
}

// Config configures a Checker. The zero value is usable.
type Config struct {
	// Logger receives a line per problem. Default: discard.
	Logger *slog.Logger
	// PageSize is how many blob records are read at once. Default 1000.
	PageSize int
	// Now returns the time of repairs. Default time.Now.
	Now func() time.Time
	// Rand picks the blobs of a read-data subset. Default: a random
	// source seeded afresh for each check.
	Rand *rand.Rand
}

// Checker checks one pair of stores.
type Checker struct {
	meta    Store
	blobs   filehub.BlobStore
	cfg     Config
	running atomic.Bool
}

// New returns a Checker of meta and blobs.
func New(meta Store, blobs filehub.BlobStore, cfg Config) *Checker {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 1000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Checker{meta: meta, blobs: blobs, cfg: cfg}
}

// ParseSubset reads a --read-data-subset value, a percentage such as
// "10%" (or "10"), as a fraction in (0, 1]. Returns EINVALID otherwise.
func ParseSubset(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v <= 0 || v > 100 {
		return 0, filehub.Errorf(filehub.EINVALID, "read-data subset %q: want a percentage above 0 and at most 100, such as 10%%", s)
	}
	return v / 100, nil
}

// run is the state of one check.
type run struct {
	*Checker
	req      api.CheckRequest
	fraction float64 // of blobs to re-hash; 0 for none
	rnd      *rand.Rand
	rep      *api.CheckReport
}

// Check runs one check and returns its report. The actor of ctx
// (filehub.WithActor) is recorded on the repairs' audit entries. An error
// means the check could not finish (a store failed); what it found is not
// an error but the report's problems (see api.CheckReport.OK). One check
// runs at a time per Checker (ECONFLICT otherwise): with ReadData it reads
// every object, and two would only compete for the disk.
func (c *Checker) Check(ctx context.Context, req api.CheckRequest) (*api.CheckReport, error) {
	if !c.running.CompareAndSwap(false, true) {
		return nil, filehub.Errorf(filehub.ECONFLICT, "a check is already running")
	}
	defer c.running.Store(false)
	r := &run{Checker: c, req: req, rnd: c.cfg.Rand}
	if req.ReadData {
		r.fraction = 1
	}
	if req.ReadDataSubset != "" {
		f, err := ParseSubset(req.ReadDataSubset)
		if err != nil {
			return nil, err
		}
		if !req.ReadData {
			r.fraction = f
		}
	}
	if r.rnd == nil {
		r.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	r.rep = &api.CheckReport{StartedAt: c.cfg.Now().UTC(), ReadData: r.fraction > 0, Repair: req.Repair, Problems: []api.CheckProblem{}}
	if err := r.blobRecords(ctx); err != nil {
		return nil, err
	}
	if err := r.objects(ctx); err != nil {
		return nil, err
	}
	if err := r.eventLog(ctx); err != nil {
		return nil, err
	}
	if err := r.auditLog(ctx); err != nil {
		return nil, err
	}
	// By kind, in the order found within a kind (sum order for blobs).
	byKind := func(a, b api.CheckProblem) int { return strings.Compare(a.Kind, b.Kind) }
	slices.SortStableFunc(r.rep.Problems, byKind)
	slices.SortStableFunc(r.rep.Notices, byKind)
	r.rep.FinishedAt = c.cfg.Now().UTC()
	return r.rep, nil
}

func (r *run) problem(p api.CheckProblem) {
	r.cfg.Logger.Warn("check: problem", "kind", p.Kind, "sha256", p.SHA256, "files", p.FileIDs,
		"detail", p.Detail, "repaired", p.Repaired)
	r.rep.Problems = append(r.rep.Problems, p)
}

func (r *run) notice(p api.CheckProblem) {
	r.rep.Notices = append(r.rep.Notices, p)
}

func (r *run) audit(ctx context.Context, action string) filehub.AuditEntry {
	return filehub.AuditEntry{Action: action, Actor: filehub.ActorFromContext(ctx), Reason: "check --repair"}
}

// blobRecords checks each blob record against its files and its object.
func (r *run) blobRecords(ctx context.Context) error {
	after := ""
	for {
		page, err := r.meta.ListBlobRefs(ctx, after, r.cfg.PageSize)
		if err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		for _, b := range page {
			if err := r.blob(ctx, b); err != nil {
				return err
			}
		}
		if len(page) < r.cfg.PageSize {
			return nil
		}
		after = page[len(page)-1].SHA256
	}
}

func fileIDs(b *filehub.BlobRefs) []string {
	ids := make([]string, len(b.Files))
	for i, f := range b.Files {
		ids[i] = f.ID
	}
	return ids
}

// blob checks one blob record: its count, its files' sizes, its object.
func (r *run) blob(ctx context.Context, b *filehub.BlobRefs) error {
	r.rep.Blobs++
	r.rep.Files += int64(len(b.Files))
	ids := fileIDs(b)
	if n := int64(len(b.Files)); b.RefCount != n {
		if err := r.refCount(ctx, b, ids); err != nil {
			return err
		}
	}
	for _, f := range b.Files {
		if f.Size != b.Size {
			r.problem(api.CheckProblem{Kind: api.CheckFileSizeMismatch, SHA256: b.SHA256, FileIDs: []string{f.ID},
				Detail: fmt.Sprintf("file %s has size %d, its blob %d", f.ID, f.Size, b.Size)})
		}
	}
	info, err := r.blobs.Stat(ctx, b.SHA256)
	if filehub.ErrorCode(err) == filehub.ENOTFOUND {
		return r.missing(ctx, b, ids)
	}
	if err != nil {
		return fmt.Errorf("stat object %s: %w", b.SHA256, err)
	}
	if b.MissingSince != nil {
		r.staleMissing(ctx, b, ids)
	}
	if info.Size != b.Size {
		r.problem(api.CheckProblem{Kind: api.CheckSizeMismatch, SHA256: b.SHA256, FileIDs: ids,
			Detail: fmt.Sprintf("object has %d bytes, its record says %d", info.Size, b.Size)})
		return nil
	}
	if r.fraction > 0 && (r.fraction >= 1 || r.rnd.Float64() < r.fraction) {
		return r.readData(ctx, b, ids)
	}
	return nil
}

// refCount reports (and with Repair fixes) a count that differs from the
// files seen in the same snapshot: no concurrent change explains it.
func (r *run) refCount(ctx context.Context, b *filehub.BlobRefs, ids []string) error {
	p := api.CheckProblem{Kind: api.CheckRefCount, SHA256: b.SHA256, FileIDs: ids,
		Detail: fmt.Sprintf("reference count %d, but %d files point at the blob", b.RefCount, len(b.Files))}
	if r.req.Repair {
		before, after, err := r.meta.RepairRefCount(ctx, b.SHA256, r.cfg.Now(), r.audit(ctx, filehub.AuditRefCountRepaired))
		switch {
		case filehub.ErrorCode(err) == filehub.ENOTFOUND:
			p.Detail += "; the record is gone since"
		case err != nil:
			return fmt.Errorf("repair reference count of %s: %w", b.SHA256, err)
		default:
			p.Repaired = true
			p.Detail += fmt.Sprintf("; repaired: count %d → %d", before, after)
		}
	}
	r.problem(p)
	return nil
}

// missing handles a record whose object Stat did not find. Unreferenced,
// it may be a sweep in progress or one whose transaction failed after the
// delete (docs/decisions.md, "Upload commit protocol"): the cleanup
// service's business. Referenced, it is re-checked in the order that rules
// out a revival re-creating the object meanwhile: record, then object.
func (r *run) missing(ctx context.Context, b *filehub.BlobRefs, ids []string) error {
	if len(b.Files) == 0 {
		r.notice(api.CheckProblem{Kind: api.CheckUnreferencedNoData, SHA256: b.SHA256,
			Detail: "unreferenced blob record without its object; the cleanup service sweeps it"})
		return nil
	}
	now, err := r.meta.FindBlob(ctx, b.SHA256)
	if filehub.ErrorCode(err) == filehub.ENOTFOUND || err == nil && now.RefCount == 0 {
		return nil // purged and swept since the page was read
	}
	if err != nil {
		return fmt.Errorf("find blob %s: %w", b.SHA256, err)
	}
	if _, err := r.blobs.Stat(ctx, b.SHA256); err == nil {
		return nil
	} else if filehub.ErrorCode(err) != filehub.ENOTFOUND {
		return fmt.Errorf("stat object %s: %w", b.SHA256, err)
	}
	p := api.CheckProblem{Kind: api.CheckMissingObject, SHA256: b.SHA256, FileIDs: ids,
		Detail: fmt.Sprintf("the object of %d bytes is gone", b.Size)}
	if r.req.Repair && b.MissingSince == nil {
		// The content itself cannot be conjured up: flag the files so
		// that downloads say so; an upload of the same content re-creates
		// the object.
		if _, err := r.meta.SetBlobMissing(ctx, b.SHA256, r.cfg.Now(), r.audit(ctx, filehub.AuditObjectMissing)); err != nil &&
			filehub.ErrorCode(err) != filehub.ENOTFOUND {
			return fmt.Errorf("flag missing object %s: %w", b.SHA256, err)
		}
		p.Detail += "; files flagged content_missing (upload the same content to restore it)"
	} else if b.MissingSince != nil {
		p.Detail += "; files already flagged content_missing"
	}
	r.problem(p)
	return nil
}

// staleMissing handles a blob flagged missing whose object is back.
func (r *run) staleMissing(ctx context.Context, b *filehub.BlobRefs, ids []string) {
	p := api.CheckProblem{Kind: api.CheckStaleMissingFlag, SHA256: b.SHA256, FileIDs: ids,
		Detail: "flagged missing, but the object is present"}
	if r.req.Repair {
		if _, err := r.meta.SetBlobMissing(ctx, b.SHA256, time.Time{}, r.audit(ctx, filehub.AuditObjectFound)); err == nil {
			p.Repaired = true
			p.Detail += "; flag cleared"
		}
	}
	r.problem(p)
}

// readData re-hashes one object.
func (r *run) readData(ctx context.Context, b *filehub.BlobRefs, ids []string) error {
	rc, err := r.blobs.Open(ctx, b.SHA256)
	if filehub.ErrorCode(err) == filehub.ENOTFOUND {
		return r.missing(ctx, b, ids)
	}
	if err != nil {
		return fmt.Errorf("open object %s: %w", b.SHA256, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, contextReader{ctx, rc})
	if err != nil {
		return fmt.Errorf("read object %s: %w", b.SHA256, err)
	}
	r.rep.BlobsRead++
	r.rep.BytesRead += n
	if got := hex.EncodeToString(h.Sum(nil)); got != b.SHA256 {
		r.problem(api.CheckProblem{Kind: api.CheckCorruptObject, SHA256: b.SHA256, FileIDs: ids,
			Detail: fmt.Sprintf("content (%d bytes) hashes to %s", n, got)})
	}
	return nil
}

// contextReader stops a long read when ctx is done.
type contextReader struct {
	ctx context.Context
	r   io.Reader
}

func (c contextReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
