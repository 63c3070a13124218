;; A handler that spreads what it takes over four linear memories and a
;; table, each under the memory limit on its own. Hostile: the limit is the
;; handler's, so together they must stop at it.
;; `spread(pages)` grows every memory by that many 64 KiB pages and replies
;; with the size of the last, in pages; `stretch(elements)` grows the table
;; and replies with its size. Either traps when a growth is refused.
(component
  (core module $main
    (memory $a 0)
    (memory $b 0)
    (memory $c 0)
    (memory $d 0)
    (table $table 0 funcref)
    (func $grew (param $previous i32)
      (if (i32.eq (local.get $previous) (i32.const -1)) (then unreachable)))
    (func (export "spread") (param $pages i32) (result i32)
      (call $grew (memory.grow $a (local.get $pages)))
      (call $grew (memory.grow $b (local.get $pages)))
      (call $grew (memory.grow $c (local.get $pages)))
      (call $grew (memory.grow $d (local.get $pages)))
      (memory.size $d))
    (func (export "stretch") (param $elements i32) (result i32)
      (call $grew (table.grow $table (ref.null func) (local.get $elements)))
      (table.size $table))
  )
  (core instance $main (instantiate $main))
  (func $spread (param "pages" u32) (result u32) (canon lift (core func $main "spread")))
  (func $stretch (param "elements" u32) (result u32) (canon lift (core func $main "stretch")))
  (instance $incoming
    (export "spread" (func $spread))
    (export "stretch" (func $stretch)))
  (export "test:spreader/incoming" (instance $incoming))
)
