package s3

// SetCopyLimits lowers the size above which Commit copies with
// UploadPartCopy, and its part size, so tests can exercise the multipart
// copy without 5 GiB objects.
func SetCopyLimits(s *Store, threshold, part int64) {
	s.copyThreshold, s.copyPart = threshold, part
}
