;; imports.wat - a module that imports something theater-wasm does not offer.
(module
  (import "env" "missing" (func $m (param i32)))
  (func (export "f") (call $m (i32.const 1))))
