;; A handler whose one event, `hoard`, asks the host for timers (WASI
;; pollables) in a loop and never drops them: each lives in the host's
;; resource table until the instance goes. Hostile: it stops only when the
;; host refuses it one or the deadline passes.
(component
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
  ))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type))
    (export "pollable" (type (eq 0)))
    (export "subscribe-duration" (func (param "when" u64) (result (own 1))))
  ))
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core module $main
    (import "wasi" "subscribe" (func $subscribe (param i64) (result i32)))
    (func (export "hoard")
      (loop $more
        (drop (call $subscribe (i64.const 3600000000000)))
        (br $more)))
  )
  (core instance $wasi (export "subscribe" (func $subscribe)))
  (core instance $main (instantiate $main (with "wasi" (instance $wasi))))
  (func $hoard (canon lift (core func $main "hoard")))
  (instance $incoming (export "hoard" (func $hoard)))
  (export "test:hoarder/incoming" (instance $incoming))
)
