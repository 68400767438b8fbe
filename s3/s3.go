// Package s3 is a filehub.BlobStore on S3-compatible object storage (AWS S3,
// MinIO, Ceph RGW, ...), chosen with
//
//	--blobs 's3://BUCKET?endpoint=URL&region=REGION&path_style=true&prefix=P/'
//
// The key layout is the one of the local disk store (localfs), under an
// optional key prefix:
//
//	<prefix>blobs/<first two hex chars of the sum>/<sha256 hex>   committed objects
//	<prefix>tmp/<generated name>                                  staged uploads
//
// Keys are built only from sums checked with filehub.ValidSHA256 or from
// names the store generates itself, never from user input.
//
// # Staging and memory
//
// A staged blob buffers what is written in a part buffer of Config.PartSize
// bytes (default 8 MiB). When the buffer is full it is uploaded as one part of
// a multipart upload of the temp key, in the background, while the next part
// fills a second buffer; when that is full too, its upload starts at once,
// next to the first (the server works on both), and Write waits for the
// first to finish to fill its buffer again. So a staged blob holds at most two part
// buffers (16 MiB with the default), whatever the size of the content, plus
// the SDK's small per-request overhead. The first buffer grows by doubling up
// to PartSize, so a small upload holds only about twice its size (staging
// 64 MiB with 5 MiB parts allocates 19 MiB in all, no more than staging
// 16 MiB; see TestStageMemoryBounded). Across staged blobs, part buffers
// come from one budget (Config.BufferMemory, default 256 MiB): a staged
// blob reserves a part at its first Write, waiting while the budget is
// spent, and takes a second (to upload in the background while the next
// part fills) only if there is room, so memory is bounded by configuration
// rather than by the number of concurrent uploads (TestBufferBudget).
// Content
// that never fills a part is sent with one PutObject at Sync or Commit; S3
// requires every part but the last to be at least 5 MiB, hence the minimum
// PartSize.
//
// # Commit
//
// Content that stayed in the first part buffer (at most PartSize bytes) and
// is committed without a Sync before, the ingest pipeline's case, costs one
// request: a PutObject straight to the object's key, conditional on the
// key being absent (If-None-Match: *; an existing object is kept, 412) and
// carrying the sum as its x-amz-checksum-sha256, so that a server that
// checks checksums refuses content that does not hash to the sum. Nothing
// is staged on the server, so Close has nothing to delete; the buffer is
// kept until Close, so a second Commit can re-create a vanished object.
//
// Otherwise Sync completes the temp object (PutObject or
// CompleteMultipartUpload): S3 acknowledges a write only once it is
// durable. Commit then checks whether the object of the sum exists
// (HeadObject) and if not copies the temp object to it on the server
// (CopyObject, or UploadPartCopy for objects above 5 GiB, the limit of a
// single copy); no content travels through filehub again. The temp object
// is kept until Close, so Commit can be called again and re-creates the
// object if it vanished meanwhile (see docs/decisions.md, also for the
// measured alternatives to the copy). Close aborts an unfinished multipart
// upload and deletes the temp object. Uploads abandoned
// by a crashed process stay as temp objects or unfinished multipart uploads;
// WalkTemp lists both and RemoveTemp removes both, so the cleanup service
// removes them after the upload expiry. (A bucket lifecycle rule
// AbortIncompleteMultipartUpload is a useful second line.)
//
// # Library
//
// The store uses the AWS SDK for Go v2 rather than minio-go because its retry
// policy is configured per client, explicitly and completely: attempts,
// backoff cap and the set of retryable errors are options of one Retryer
// (minio-go's backoff unit and cap are package-level variables shared by every
// client in the process), and its list paginators are synchronous, so a Walk
// that stops early leaves no goroutine behind. It is also the reference
// client of AWS S3 itself. The SDK's default request checksums (trailing
// CRC32 in aws-chunked bodies) are turned down to "when required", because
// many S3-compatible servers do not accept them; over plain HTTP the SigV4
// signature still covers a SHA-256 of every body.
//
// # Retries and errors
//
// Requests are retried by the SDK's standard retryer with exponential backoff
// and jitter on 5xx responses, throttling (503 SlowDown, 429 and the
// throttling error codes) and connection errors, up to Config.MaxAttempts
// attempts; other 4xx responses are not retried. The retryer's client-side
// retry quota (a token bucket) also stops retrying during a long outage, so
// requests then fail fast. Errors: a missing object is ENOTFOUND, an invalid
// sum EINVALID, network failures and 5xx/throttling after the retries
// EUNAVAILABLE, EntityTooLarge, QuotaExceeded and 507 ESTORAGE.
//
// # No free space
//
// Store does not implement filehub.FreeSpacer: an object store has no
// free-space figure to check before an upload; a full quota shows up as
// ESTORAGE from the request that hits it.
package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"golang.org/x/sync/semaphore"

	"github.com/filehub/filehub"
)

// Compile-time checks of the interfaces Store implements. It deliberately
// does not implement filehub.FreeSpacer (see the package doc).
var (
	_ filehub.BlobStore   = (*Store)(nil)
	_ filehub.BlobWalker  = (*Store)(nil)
	_ filehub.TempCleaner = (*Store)(nil)
	_ io.Closer           = (*Store)(nil)
)

// S3 limits and the store's defaults.
const (
	// MinPartSize is S3's minimum size of every part of a multipart upload
	// but the last.
	MinPartSize = 5 << 20
	// DefaultPartSize is the part size when Config.PartSize is 0.
	DefaultPartSize = 8 << 20
	// DefaultBufferMemory is the budget of part buffers when
	// Config.BufferMemory is 0.
	DefaultBufferMemory = 256 << 20
	// maxPartSize is S3's maximum size of one part.
	maxPartSize = 5 << 30
	// maxCopySize is the largest object one CopyObject may copy; larger
	// ones are copied with UploadPartCopy.
	maxCopySize = 5 << 30
	// copyPartSize is the part size of a multipart copy. With 10,000
	// parts at most, it covers objects up to 5 TiB, S3's maximum.
	copyPartSize = 512 << 20

	defaultMaxAttempts = 5
	defaultMaxBackoff  = 20 * time.Second

	// cleanupTimeout bounds the requests of methods that have no context:
	// StagedBlob.Close and RemoveTemp.
	cleanupTimeout = 30 * time.Second
)

// Config configures a Store. The zero value is the default.
type Config struct {
	// Logger receives the store's log records. Default: slog.Default().
	Logger *slog.Logger

	// AccessKeyID, SecretAccessKey and SessionToken are static credentials.
	// Default (AccessKeyID empty): the SDK's default credential chain,
	// which reads the standard AWS environment variables
	// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN) first,
	// then the shared config files and instance or task roles.
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string

	// PartSize is the size of the parts of a staged upload and of each of
	// the at most two buffers a staged blob holds. Default: 8 MiB
	// (DefaultPartSize). Open returns EINVALID below 5 MiB (MinPartSize) or
	// above 5 GiB.
	PartSize int64

	// BufferMemory is the most bytes of part buffers that all the staged
	// blobs of this Store hold at once. A staged blob reserves one part
	// (PartSize) at its first Write, waiting there while the budget is
	// spent, and a second part for uploading in the background only if
	// the budget has room (otherwise its parts go up one at a time). So
	// memory is bounded by configuration, not by the number of uploads.
	// Default 256 MiB (DefaultBufferMemory); at least PartSize (Open
	// returns EINVALID otherwise); negative: no budget.
	BufferMemory int64

	// MaxAttempts is how often a request is tried in all, the first try
	// included, when it fails with a retryable error. Default: 5.
	MaxAttempts int

	// MaxBackoff caps the wait between two attempts; the wait grows
	// exponentially with jitter up to it. Default: 20s.
	MaxBackoff time.Duration

	// HTTPClient sends the requests. Default: the SDK's default client
	// (which honours AWS_CA_BUNDLE) on a transport of the store's own,
	// whose connections Store.Close closes.
	HTTPClient *http.Client
}

// Store is a BlobStore in an S3 bucket. It is safe for concurrent use, also
// by several processes (or filehub instances) on the same bucket and prefix.
type Store struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ending in "/"
	partSize int64
	log      *slog.Logger

	ownTransport *http.Transport // closed by Close; nil if Config.HTTPClient was given

	// bufs recycles full-size part buffers between staged blobs, so that
	// steady uploading does not allocate a part buffer per part.
	bufs sync.Pool

	// budget holds Config.BufferMemory bytes; nil without a budget.
	// reserved counts the bytes taken from it (for BufferMemoryInUse).
	budget   *semaphore.Weighted
	reserved atomic.Int64

	// copyThreshold is maxCopySize, lowered only by tests.
	copyThreshold int64
	copyPart      int64
}

// location is what a blob URL names.
type location struct {
	bucket    string
	endpoint  string
	region    string
	pathStyle bool
	prefix    string
}

// bucketPattern accepts S3's bucket naming rules (3-63 characters of
// lowercase letters, digits, dots and hyphens, starting and ending with a
// letter or digit), which every S3-compatible server accepts too.
var bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// parseURL parses s3://BUCKET?endpoint=URL&region=REGION&path_style=BOOL&prefix=P.
// Every problem is an EINVALID error naming it.
func parseURL(rawURL string) (location, error) {
	bad := func(format string, args ...any) (location, error) {
		return location{}, filehub.Errorf(filehub.EINVALID, "blob store URL: "+format, args...)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return bad("%v", err)
	}
	if u.Scheme != "s3" {
		return bad("scheme %q, want s3://BUCKET?...", u.Scheme)
	}
	if u.User != nil {
		return bad("credentials in the URL are not accepted; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	if u.Opaque != "" || u.Host == "" {
		return bad("no bucket; want s3://BUCKET?...")
	}
	if !bucketPattern.MatchString(u.Host) {
		return bad("invalid bucket name %q (3-63 lowercase letters, digits, dots and hyphens)", u.Host)
	}
	if u.Path != "" && u.Path != "/" {
		return bad("path %q after the bucket; use prefix= for a key prefix", u.Path)
	}
	if u.Fragment != "" {
		return bad("unexpected fragment %q", u.Fragment)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	loc := location{bucket: u.Host}
	for k, vs := range q {
		if len(vs) != 1 {
			return bad("parameter %s given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "endpoint":
			e, err := url.Parse(v)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return bad("endpoint %q is not an http:// or https:// URL", v)
			}
			loc.endpoint = v
		case "region":
			if v == "" || strings.ContainsAny(v, "/ ") {
				return bad("invalid region %q", v)
			}
			loc.region = v
		case "path_style":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return bad("path_style=%q is not a boolean", v)
			}
			loc.pathStyle = b
		case "prefix":
			p := strings.Trim(v, "/")
			if p != "" {
				if slices.Contains(strings.Split(p, "/"), "..") || strings.ContainsRune(p, 0) {
					return bad("invalid prefix %q", v)
				}
				p += "/"
			}
			loc.prefix = p
		default:
			return bad("unknown parameter %q (want endpoint, region, path_style or prefix)", k)
		}
	}
	return loc, nil
}

// Open connects to the bucket named by rawURL,
//
//	s3://BUCKET?endpoint=URL&region=REGION&path_style=true&prefix=P
//
// where endpoint (default: AWS S3 of the region), region (default: the SDK's
// configuration, e.g. AWS_REGION, else us-east-1), path_style (default
// false: virtual-hosted-style requests) and prefix (default none) are
// optional. It checks that the bucket exists and is accessible.
//
// Returns EINVALID for a malformed URL or Config, and EUNAVAILABLE if the
// bucket cannot be reached, does not exist or access is denied.
func Open(ctx context.Context, rawURL string, cfg Config) (*Store, error) {
	loc, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	partSize := cfg.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize || partSize > maxPartSize {
		return nil, filehub.Errorf(filehub.EINVALID, "s3: part size %d outside [%d, %d]", partSize, MinPartSize, int64(maxPartSize))
	}
	bufMem := cfg.BufferMemory
	if bufMem == 0 {
		bufMem = DefaultBufferMemory
	}
	if bufMem > 0 && bufMem < partSize {
		return nil, filehub.Errorf(filehub.EINVALID, "s3: buffer memory %d is less than one part (%d)", bufMem, partSize)
	}
	if cfg.MaxAttempts < 0 || cfg.MaxBackoff < 0 {
		return nil, filehub.Errorf(filehub.EINVALID, "s3: negative MaxAttempts or MaxBackoff")
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, filehub.Errorf(filehub.EINVALID, "s3: static credentials need both an access key ID and a secret")
	}
	maxAttempts := cfg.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = defaultMaxAttempts
	}
	maxBackoff := cfg.MaxBackoff
	if maxBackoff == 0 {
		maxBackoff = defaultMaxBackoff
	}

	s := &Store{
		bucket:        loc.bucket,
		prefix:        loc.prefix,
		partSize:      partSize,
		log:           cfg.Logger,
		copyThreshold: maxCopySize,
		copyPart:      copyPartSize,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if bufMem > 0 {
		s.budget = semaphore.NewWeighted(bufMem)
	}
	opts := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = maxAttempts
				o.MaxBackoff = maxBackoff
				o.Backoff = retry.NewExponentialJitterBackoff(maxBackoff)
				// 500, 502, 503 and 504, SlowDown and the other
				// throttling codes are in the defaults; 429 is added
				// explicitly because S3-compatible servers send it
				// without a modeled error code.
				o.Retryables = append(o.Retryables, retry.RetryableHTTPStatusCode{
					Codes: map[int]struct{}{http.StatusTooManyRequests: {}},
				})
			})
		}),
		// Trailing CRC32 checksums in aws-chunked bodies are not
		// understood by many S3-compatible servers.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if loc.region != "" {
		opts = append(opts, config.WithRegion(loc.region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken)))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		s.Close()
		return nil, filehub.WrapError(filehub.EINVALID, "s3: load AWS configuration", err)
	}
	if cfg.HTTPClient != nil {
		awsCfg.HTTPClient = cfg.HTTPClient
	} else if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		// The SDK's client, configured from the environment (e.g. a CA
		// bundle from AWS_CA_BUNDLE), but on a transport of our own, so
		// that Close can close its connections.
		s.ownTransport = bc.GetTransport()
		awsCfg.HTTPClient = &http.Client{
			Transport: s.ownTransport,
			// Like the SDK's client: a 3xx is an answer, not a hop.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	s.client = s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = loc.pathStyle
		if loc.endpoint != "" {
			o.BaseEndpoint = aws.String(loc.endpoint)
		}
	})

	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		s.Close()
		return nil, filehub.WrapError(filehub.EUNAVAILABLE,
			fmt.Sprintf("s3: bucket %q is not accessible (%s)", s.bucket, describe(err)), err)
	}
	return s, nil
}

// Close releases idle connections of the store's own HTTP transport. The
// store must not be used afterwards.
// BufferMemoryInUse returns the bytes of part buffers the staged blobs
// hold now (reserved from Config.BufferMemory).
func (s *Store) BufferMemoryInUse() int64 { return s.reserved.Load() }

func (s *Store) Close() error {
	if s.ownTransport != nil {
		s.ownTransport.CloseIdleConnections()
	}
	return nil
}

// objectKey returns the key of the object sum, or an EINVALID error if sum is
// not a lowercase hex SHA-256. It is the only place a sum becomes a key.
func (s *Store) objectKey(sum string) (string, error) {
	if !filehub.ValidSHA256(sum) {
		return "", filehub.Errorf(filehub.EINVALID, "invalid sha256 %q", sum)
	}
	return s.prefix + "blobs/" + sum[:2] + "/" + sum, nil
}

func (s *Store) blobsPrefix() string { return s.prefix + "blobs/" }
func (s *Store) tmpPrefix() string   { return s.prefix + "tmp/" }

// Stage starts a staged upload under a new temp key. Nothing is sent before
// the first part fills or Sync or Commit is called. ctx's values reach the
// part uploads Write starts, but its end does not stop them: once a body
// has fully arrived its upload must finish even if the client hangs up.
// StagedBlob.Close stops them.
func (s *Store) Stage(ctx context.Context) (filehub.StagedBlob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return newStaged(ctx, s, filehub.NewID("stage-")), nil
}

// Open returns a reader of the object sum that fetches content with ranged
// GETs from the current position on first Read after Open or a Seek, so that
// seeking (HTTP Range requests) never downloads the skipped bytes. ctx bounds
// every request of the reader. Returns EINVALID for an invalid sum and
// ENOTFOUND if there is no such object.
func (s *Store) Open(ctx context.Context, sum string) (io.ReadSeekCloser, error) {
	info, err := s.Stat(ctx, sum)
	if err != nil {
		return nil, err
	}
	key, _ := s.objectKey(sum)
	return &reader{ctx: ctx, s: s, key: key, sum: sum, size: info.Size}, nil
}

// Stat returns the size and last modification time of the object sum.
// Returns EINVALID for an invalid sum and ENOTFOUND if there is no such
// object.
func (s *Store) Stat(ctx context.Context, sum string) (filehub.BlobInfo, error) {
	key, err := s.objectKey(sum)
	if err != nil {
		return filehub.BlobInfo{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return filehub.BlobInfo{}, filehub.Errorf(filehub.ENOTFOUND, "blob %s not found", sum)
		}
		return filehub.BlobInfo{}, s.wrap("stat blob "+sum, err)
	}
	info := filehub.BlobInfo{SHA256: sum, Size: aws.ToInt64(out.ContentLength)}
	if out.LastModified != nil {
		info.ModTime = *out.LastModified
	}
	return info, nil
}

// Delete removes the object sum. Deleting a missing object is not an error.
// Returns EINVALID for an invalid sum.
func (s *Store) Delete(ctx context.Context, sum string) error {
	key, err := s.objectKey(sum)
	if err != nil {
		return err
	}
	if err := s.deleteKey(ctx, key); err != nil {
		return s.wrap("delete blob "+sum, err)
	}
	return nil
}

func (s *Store) deleteKey(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil && !isNotFound(err) {
		return err
	}
	return nil
}

// Ping checks that the bucket is reachable and accessible (HeadBucket).
// Returns EUNAVAILABLE if not.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return filehub.WrapError(filehub.EUNAVAILABLE, "blob store unavailable", fmt.Errorf("s3: head bucket %s: %w", s.bucket, err))
	}
	return nil
}

// isNotFound reports whether err is S3's answer for a missing key (404,
// NoSuchKey, NotFound).
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound") {
		return true
	}
	return httpStatus(err) == http.StatusNotFound
}

// httpStatus returns the HTTP status of the response that caused err, or 0
// if there was none (a network failure).
func httpStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// storageFullCodes are the error codes of a full bucket, quota or object
// size limit: the closest an object store comes to ENOSPC.
var storageFullCodes = []string{"EntityTooLarge", "QuotaExceeded", "XMinioStorageFull", "XMinioAdminBucketQuotaExceeded", "InsufficientStorage"}

// wrap turns an SDK error into a filehub error for op: ESTORAGE for a full
// store, EUNAVAILABLE for a network failure or a 5xx or throttling answer
// (the retries are spent by now), and the error wrapped with context (an
// internal error) for anything else, e.g. 403. A context's error stays as
// it is, so callers can recognise it.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("s3: %s: %w", op, err)
	}
	var fe *filehub.Error
	if errors.As(err, &fe) {
		return err
	}
	err = fmt.Errorf("s3: %s: %w", op, err)
	var ae smithy.APIError
	status := httpStatus(err)
	switch {
	case status == http.StatusInsufficientStorage || (errors.As(err, &ae) && slices.Contains(storageFullCodes, ae.ErrorCode())):
		return filehub.WrapError(filehub.ESTORAGE, "insufficient storage", err)
	case status == 0, status >= 500, status == http.StatusTooManyRequests:
		return filehub.WrapError(filehub.EUNAVAILABLE, "blob store unavailable", err)
	}
	return err
}

// describe summarises err for a message shown to the operator.
func describe(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if st := httpStatus(err); st != 0 {
			return fmt.Sprintf("%d %s", st, ae.ErrorCode())
		}
		return ae.ErrorCode()
	}
	if st := httpStatus(err); st != 0 {
		return fmt.Sprintf("HTTP %d", st)
	}
	return "no answer from the endpoint"
}
