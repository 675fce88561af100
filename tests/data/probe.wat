;; probe: an actor for the tests of bad behaviour. The first byte of a message
;; (send or request) chooses what it does:
;;   e  answer the state            t  trap (unreachable)
;;   l  loop forever                g  memory.grow 100 pages; answer the result (i32)
;;   b  log with an out-of-bounds pointer, then answer "ok"
;;   s  make the message the new state, answer "ok"
;;   x  return an error
;; init loops forever when the state is a JSON string starting with L ("Loop").
(module
  (import "theater:simple/runtime" "log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 512) "ok")
  (data (i32.const 520) "probe error")
  (global $top (mut i32) (i32.const 4096))
  (func (export "theater_abi_version") (result i32) (i32.const 1))
  (func (export "theater_alloc") (param $n i32) (result i32) (local $p i32)
    (local.set $p (global.get $top))
    (global.set $top (i32.add (global.get $top) (local.get $n)))
    (if (i32.gt_u (global.get $top) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1))
        (then (return (i32.const 0))))))
    (local.get $p))
  (func (export "theater_reset_heap") (global.set $top (i32.const 4096)))
  (func $result (param $st i32) (param $sp i32) (param $sn i32) (param $op i32) (param $on i32)
    (result i32)
    (i32.store (i32.const 0) (local.get $st))
    (i32.store (i32.const 4) (local.get $sp))
    (i32.store (i32.const 8) (local.get $sn))
    (i32.store (i32.const 12) (local.get $op))
    (i32.store (i32.const 16) (local.get $on))
    (i32.const 0))
  (func (export "init") (param $sp i32) (param $sn i32) (result i32)
    (if (i32.and (i32.gt_u (local.get $sn) (i32.const 1))
                 (i32.eq (i32.load8_u offset=1 (local.get $sp)) (i32.const 76)))
      (then (loop $forever (br $forever))))
    (call $result (i32.const 0) (local.get $sp) (local.get $sn) (i32.const 0) (i32.const 0)))
  (func $handle (param $sp i32) (param $sn i32) (param $mp i32) (param $mn i32) (result i32)
    (local $op i32)
    (if (i32.eqz (local.get $mn))
      (then (return (call $result (i32.const 0) (local.get $sp) (local.get $sn)
                                  (i32.const 512) (i32.const 2)))))
    (local.set $op (i32.load8_u (local.get $mp)))
    (if (i32.eq (local.get $op) (i32.const 116)) (then unreachable))             ;; t
    (if (i32.eq (local.get $op) (i32.const 108)) (then (loop $l (br $l))))       ;; l
    (if (i32.eq (local.get $op) (i32.const 103)) (then                          ;; g
      (i32.store (i32.const 600) (memory.grow (i32.const 100)))
      (return (call $result (i32.const 0) (local.get $sp) (local.get $sn)
                            (i32.const 600) (i32.const 4)))))
    (if (i32.eq (local.get $op) (i32.const 98)) (then                           ;; b
      (call $log (i32.const -256) (i32.const 1000))))
    (if (i32.eq (local.get $op) (i32.const 115)) (then                          ;; s
      (return (call $result (i32.const 0) (local.get $mp) (local.get $mn)
                            (i32.const 512) (i32.const 2)))))
    (if (i32.eq (local.get $op) (i32.const 120)) (then                          ;; x
      (return (call $result (i32.const 1) (local.get $sp) (local.get $sn)
                            (i32.const 520) (i32.const 11)))))
    (if (i32.eq (local.get $op) (i32.const 101)) (then                          ;; e
      (return (call $result (i32.const 0) (local.get $sp) (local.get $sn)
                            (local.get $sp) (local.get $sn)))))
    (call $result (i32.const 0) (local.get $sp) (local.get $sn) (i32.const 512) (i32.const 2)))
  (func (export "handle-send") (param i32 i32 i32 i32) (result i32)
    (call $handle (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "handle-request") (param i32 i32 i32 i32) (result i32)
    (call $handle (local.get 0) (local.get 1) (local.get 2) (local.get 3))))
