;; wasi_raw.wat - calls WASI imports directly: one theater-wasm implements
;; (fd_prestat_get, which answers EBADF = 8 since there are no preopens),
;; one it stubs (path_open: ENOSYS = 52), and fd_write with a bad pointer
;; (EFAULT = 21).
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "prestat") (result i32) (call $prestat (i32.const 3) (i32.const 0)))
  (func (export "open") (result i32)
    (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
                (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)))
  (func (export "bad_write") (result i32)
    (call $write (i32.const 1) (i32.const 65530) (i32.const 2) (i32.const 0))))
