;; A handler whose `copy(length)` replies with that many bytes of its memory
;; (12.5 MiB of zeros), as a `list<u8>`. Hostile at lengths in the millions:
;; the host holds each item of a list as a value of its own, tens of times
;; the guest's bytes, so a call that hands it too many is stopped.
(component
  (core module $main
    (memory (export "memory") 200)
    ;; The reply's pointer and length at 0, its bytes from 8 on.
    (func (export "copy") (param $length i32) (result i32)
      (i32.store (i32.const 0) (i32.const 8))
      (i32.store (i32.const 4) (local.get $length))
      (i32.const 0))
  )
  (core instance $main (instantiate $main))
  (alias core export $main "memory" (core memory $memory))
  (func $copy (param "length" u32) (result (list u8))
    (canon lift (core func $main "copy") (memory $memory)))
  (instance $incoming (export "copy" (func $copy)))
  (export "test:copier/incoming" (instance $incoming))
)
