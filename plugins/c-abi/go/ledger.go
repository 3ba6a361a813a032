// ledger: a Go plugin over switchboard.h, built with -buildmode=c-shared. Go allows one Go
// runtime per process, so the host runs Go plugins in worker processes (isolation =
// "process" is their default). table.c holds the static table and the C hooks, which call
// the Go functions exported here.
//
// Build: CGO_CFLAGS="-I$PWD/plugin-api/include" go build -buildmode=c-shared -o libledger.so ./plugins/c-abi/go
package main

/*
#include <stdlib.h>
#include "switchboard.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"sync/atomic"
	"unsafe"
)

var entries atomic.Int64

// goRecord answers user_joined: a ledger line for the new user, in memory the host frees
// through goRelease.
//
//export goRecord
func goRecord(name C.sb_str, email C.sb_str, out *C.sb_str) {
	n := entries.Add(1)
	who := C.GoStringN(name.ptr, C.int(name.len))
	domain := C.GoStringN(email.ptr, C.int(email.len))
	if at := strings.LastIndexByte(domain, '@'); at >= 0 {
		domain = domain[at+1:]
	}
	line := fmt.Sprintf("entry %d: %s at %s (from Go)", n, who, domain)
	out.ptr = C.CString(line)
	out.len = C.size_t(len(line))
}

// goCount answers ledger_count.
//
//export goCount
func goCount() C.int64_t {
	return C.int64_t(entries.Load())
}

// goRelease frees an answer of goRecord.
//
//export goRelease
func goRelease(data unsafe.Pointer) {
	C.free(data)
}

func main() {}
