;; A handler whose core module has a start function that waits on a WASI
;; pollable (a 1 ms timer) while the component is being instantiated: guest
;; code that blocks before any event. Its one event, `ping`, does nothing.
(component
  (import "wasi:io/poll@0.2.0" (instance $poll
    (export "pollable" (type (sub resource)))
    (export "[method]pollable.block" (func (param "self" (borrow 0))))
  ))
  (alias export $poll "pollable" (type $pollable))
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $clock
    (alias outer 1 $pollable (type))
    (export "pollable" (type (eq 0)))
    (export "subscribe-duration" (func (param "when" u64) (result (own 1))))
  ))
  (core func $block (canon lower (func $poll "[method]pollable.block")))
  (core func $subscribe (canon lower (func $clock "subscribe-duration")))
  (core module $main
    (import "wasi" "block" (func $block (param i32)))
    (import "wasi" "subscribe" (func $subscribe (param i64) (result i32)))
    (func $wait_a_millisecond
      (call $block (call $subscribe (i64.const 1000000))))
    (start $wait_a_millisecond)
    (func (export "ping"))
  )
  (core instance $wasi
    (export "block" (func $block))
    (export "subscribe" (func $subscribe)))
  (core instance $main (instantiate $main (with "wasi" (instance $wasi))))
  (func $ping (canon lift (core func $main "ping")))
  (instance $incoming (export "ping" (func $ping)))
  (export "test:blocking-start/incoming" (instance $incoming))
)
