package s3

import (
	"context"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/filehub/filehub"
)

// Walk calls fn for every object under blobs/, in ascending order of sum:
// ListObjectsV2 returns keys in binary order, and blobs/<ab>/<sum> sorts like
// sum because the fan-out is the sum's first two characters. ModTime is the
// object's LastModified. Keys that do not conform to the layout are skipped
// and logged as warnings. Walk stops at the first error from fn and returns
// it unchanged, or returns ctx's error if ctx is done. Objects added or
// removed during the walk may or may not be seen.
func (s *Store) Walk(ctx context.Context, fn func(filehub.BlobInfo) error) error {
	prefix := s.blobsPrefix()
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return s.wrap("walk", err)
		}
		for _, o := range page.Contents {
			rel := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			fanOut, sum, ok := strings.Cut(rel, "/")
			if !ok || !filehub.ValidSHA256(sum) || fanOut != sum[:2] {
				s.log.Warn("s3: walk: skipping non-conforming key", "key", aws.ToString(o.Key))
				continue
			}
			info := filehub.BlobInfo{SHA256: sum, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}
			if err := fn(info); err != nil {
				return err
			}
		}
	}
	return nil
}

// WalkTemp calls fn for every staged upload under tmp/ with its name, time
// and size: completed temp objects (with their LastModified) and unfinished
// multipart uploads, such as those of a crashed process (with the time of
// their last uploaded part, or of their start if none, and the size of
// their parts). A name may be reported twice while an upload completes.
// WalkTemp stops at the first error from fn and returns it unchanged, or
// returns ctx's error if ctx is done.
func (s *Store) WalkTemp(ctx context.Context, fn func(name string, modTime time.Time, size int64) error) error {
	prefix := s.tmpPrefix()
	objects := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &prefix})
	for objects.HasMorePages() {
		page, err := objects.NextPage(ctx)
		if err != nil {
			return s.walkError(ctx, err)
		}
		for _, o := range page.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), prefix)
			if !validTempName(name) {
				continue
			}
			if err := fn(name, aws.ToTime(o.LastModified), aws.ToInt64(o.Size)); err != nil {
				return err
			}
		}
	}

	uploads := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &prefix})
	for uploads.HasMorePages() {
		page, err := uploads.NextPage(ctx)
		if isNoSuchUpload(err) {
			break // some servers (gofakes3) say so for a bucket without uploads
		}
		if err != nil {
			return s.walkError(ctx, err)
		}
		for _, u := range page.Uploads {
			name := strings.TrimPrefix(aws.ToString(u.Key), prefix)
			if !validTempName(name) {
				continue
			}
			modTime, size, err := s.uploadProgress(ctx, aws.ToString(u.Key), aws.ToString(u.UploadId), aws.ToTime(u.Initiated))
			if err != nil {
				return s.walkError(ctx, err)
			}
			if err := fn(name, modTime, size); err != nil {
				return err
			}
		}
	}
	return nil
}

// uploadProgress returns the time of the last part of an unfinished
// multipart upload (initiated if it has none) and the size of its parts, so
// that an upload still receiving parts is not taken for an abandoned one.
func (s *Store) uploadProgress(ctx context.Context, key, id string, initiated time.Time) (time.Time, int64, error) {
	modTime, size := initiated, int64(0)
	parts := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{Bucket: &s.bucket, Key: &key, UploadId: &id})
	for parts.HasMorePages() {
		page, err := parts.NextPage(ctx)
		if err != nil {
			if isNotFound(err) || isNoSuchUpload(err) {
				break // completed or aborted meanwhile
			}
			return time.Time{}, 0, err
		}
		for _, p := range page.Parts {
			size += aws.ToInt64(p.Size)
			if t := aws.ToTime(p.LastModified); t.After(modTime) {
				modTime = t
			}
		}
	}
	return modTime, size, nil
}

func (s *Store) walkError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return s.wrap("walk temp", err)
}

// RemoveTemp removes the staged upload name: it aborts its unfinished
// multipart uploads and deletes its temp object. name must be a name as
// passed by WalkTemp; anything else (empty, "." or "..", containing a slash,
// backslash or NUL) returns EINVALID. Removing a missing upload is not an
// error. A staged blob whose upload was removed can no longer be committed.
// Its requests stop when ctx is done and are bounded by 30 seconds.
func (s *Store) RemoveTemp(ctx context.Context, name string) error {
	if !validTempName(name) {
		return filehub.Errorf(filehub.EINVALID, "invalid temp file name %q", name)
	}
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	key := s.tmpPrefix() + name
	uploads := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &key})
	for uploads.HasMorePages() {
		page, err := uploads.NextPage(ctx)
		if isNoSuchUpload(err) {
			break // as in WalkTemp
		}
		if err != nil {
			return s.wrap("remove temp "+name, err)
		}
		for _, u := range page.Uploads {
			if aws.ToString(u.Key) != key { // a longer name with this prefix
				continue
			}
			if err := s.abort(ctx, key, aws.ToString(u.UploadId)); err != nil {
				return s.wrap("remove temp "+name, err)
			}
		}
	}
	if err := s.deleteKey(ctx, key); err != nil {
		return s.wrap("remove temp "+name, err)
	}
	return nil
}

// validTempName reports whether name can be a temp name: a single, plain
// key segment.
func validTempName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\\\x00")
}
