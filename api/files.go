package api

import "github.com/filehub/filehub"

// FilePage is a page of files: the body of GET /v1/files and the result of
// files.list.
type FilePage struct {
	Files []*filehub.File `json:"files"`
	// NextCursor is the cursor of the next page, absent on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// FilesListRequest is the params of files.list and the query of
// GET /v1/files (limit, cursor).
type FilesListRequest struct {
	// Limit is the page size; 0 asks for the server's default.
	Limit int `json:"limit"`
	// Cursor is the NextCursor of the previous page; "" for the first.
	Cursor string `json:"cursor"`
}

// FileRequest names one file: the params of files.stat, files.delete and
// files.restore, and the {id} of their HTTP routes.
type FileRequest struct {
	ID string `json:"id"`
}

// Upload is the answer to an upload (POST /v1/files, 201): the stored
// record and whether its content was already stored. It is also what
// `filehub upload --json` prints per file.
type Upload struct {
	*filehub.File
	// Deduplicated reports that the content was already stored, so no new
	// blob bytes were written.
	Deduplicated bool `json:"deduplicated"`
}

// UploadList is the answer to a multipart upload of more than one file.
type UploadList struct {
	Files []*Upload `json:"files"`
}

// EventsSubscribeRequest is the params of events.subscribe.
type EventsSubscribeRequest struct {
	// After is the id of the last event the client has; absent or 0 means
	// from the oldest retained event.
	After *int64 `json:"after"`
}

// EventsSubscribeResult is the result of events.subscribe.
type EventsSubscribeResult struct {
	After  int64 `json:"after"`
	Oldest int64 `json:"oldest"`
	Latest int64 `json:"latest"`
}

// Empty is the result of methods that return nothing (events.unsubscribe).
type Empty struct{}

// Status is the body of GET /healthz and GET /readyz.
type Status struct {
	Status string `json:"status"`
}
