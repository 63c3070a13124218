;; A handler whose core module's start function never returns: a hostile
;; component that would hang whoever instantiates it. Its one event, `ping`,
;; is never reached.
(component
  (core module $main
    (func $spin (loop $forever (br $forever)))
    (start $spin)
    (func (export "ping"))
  )
  (core instance $main (instantiate $main))
  (func $ping (canon lift (core func $main "ping")))
  (instance $incoming (export "ping" (func $ping)))
  (export "test:spinning-start/incoming" (instance $incoming))
)
