;; hello: the smallest theater actor package. It exports its memory and an
;; `init` that keeps the state it is given. The supervisor validates it with
;; the engine before the actor is `running`.
(module
  (memory (export "memory") 1)
  (func (export "init") (param $state_ptr i32) (param $state_len i32) (result i32)
    (i32.const 0)))
