"""fireflys hardware side: from an integer artifact (:mod:`fireflys_sw.artifact`) to gateware,
simulation and boards.

* :mod:`fireflys_hw.compiler`: artifact -> plan (numpy only);
* :mod:`fireflys_hw.gateware`: plan -> Amaranth components;
* :mod:`fireflys_hw.sim`: simulate the gateware (Verilator, Amaranth's simulator);
* :mod:`fireflys_hw.host`: drive a board over the UART link (numpy and pyserial only);
* :mod:`fireflys_hw.flow`: the steps as functions, :mod:`fireflys_hw.report` the simulation
  report, :mod:`fireflys_hw.synth` synthesis estimates, :mod:`fireflys_hw.cli` the commands.

``docs/architecture.md`` has the map and the directions of imports.
"""
