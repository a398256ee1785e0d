"""The compiler: from an artifact to a plan, and the weight images the gateware loads.

Pure Python and numpy (no Amaranth): a plan can be made, saved, read and compared without
building gateware. Modules, from the bottom up (each imports only those above it in this
list):

* :mod:`.base`: the planning error, plan-file format constants, the gateware constants the
  models assume, a layer's window geometry;
* :mod:`.devices`: FPGA device profiles (the budgets);
* :mod:`.weights`: weight packing for the sparsity detectors (the memory images the gateware
  reads; the compiler chooses them);
* :mod:`.reference`: numpy reference of the gateware's streams (bit planes, im2col windows);
* :mod:`.workload`: measured densities and effectual pairs (:class:`LayerStats`);
* :mod:`.cycles`: the cycle model (formula and the synapse array's recurrence);
* :mod:`.resources`: the resource model (memories mapped by Yosys' rules, calibrated logic);
* :mod:`.plan`: the plan as frozen data and its table;
* :mod:`.search`: the design-space search (:func:`plan_accelerator`);
* :mod:`.planfile`: plans as versioned JSON, and the check of a plan against an artifact.
"""

from .base import (LANE_FIFO_DEPTH, PLAN_FORMAT, PLAN_VERSION, WINDOW_DEPTH, PlanError,
                   lane_block)
from .cycles import predicted_cycles, recurrence_cycles
from .devices import DeviceError, DeviceProfile, device_profile
from .plan import LayerPlan, Plan, StopReason, format_plan
from .planfile import check_plan, load_plan, plan_from_dict, plan_to_dict, save_plan
from .resources import (DEFAULT_RESOURCE_MODEL, RESOURCE_COEFFICIENTS, FamilyModel,
                        ResourceModel, Resources, fifo_depth, predicted_resources,
                        window_beat_bits)
from .search import DEFAULT_UTILISATION, plan_accelerator
from .workload import LayerStats, measure_densities, stats_from_density

__all__ = [
    "PLAN_FORMAT", "PLAN_VERSION", "PlanError", "LayerStats", "measure_densities",
    "stats_from_density", "predicted_cycles", "recurrence_cycles", "Resources", "FamilyModel",
    "ResourceModel", "DEFAULT_RESOURCE_MODEL", "RESOURCE_COEFFICIENTS", "predicted_resources",
    "fifo_depth", "window_beat_bits", "LANE_FIFO_DEPTH", "WINDOW_DEPTH", "lane_block",
    "StopReason", "LayerPlan", "Plan", "plan_accelerator", "format_plan", "plan_to_dict",
    "plan_from_dict", "save_plan", "load_plan", "check_plan", "DEFAULT_UTILISATION",
    "DeviceError", "DeviceProfile", "device_profile",
]
