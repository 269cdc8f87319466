"""Wire enumerations of OpenADR 2.0b (values exactly as the 2.0b XSDs spell them).

Where the schema admits extensions (`x-...` tokens: report names, report types, reading types,
data quality), the model keeps a plain `str` and these enums list the values we know, so an
extension value still round-trips. Where the profile refuses extensions (signal names: 460),
the model uses the enum itself.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ResponseCode(IntEnum):
    """eiResponse/responseCode values of the 2.0b profile (HTTP status stays 200)."""

    OK = 200
    OUT_OF_SEQUENCE = 450
    NOT_ALLOWED = 451
    INVALID_ID = 452
    NOT_RECOGNIZED = 453
    INVALID_DATA = 454
    COMPLIANCE_ERROR = 459
    SIGNAL_NOT_SUPPORTED = 460
    REPORT_NOT_SUPPORTED = 461
    TARGET_MISMATCH = 462
    NOT_REGISTERED_OR_AUTHORIZED = 463
    DEPLOYMENT_ERROR = 469


class EventStatus(StrEnum):
    NONE = "none"
    FAR = "far"
    NEAR = "near"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class OptType(StrEnum):
    OPT_IN = "optIn"
    OPT_OUT = "optOut"


class OptReason(StrEnum):
    ECONOMIC = "economic"
    EMERGENCY = "emergency"
    MUST_RUN = "mustRun"
    NOT_PARTICIPATING = "notParticipating"
    OUTAGE_RUN_STATUS = "outageRunStatus"
    OVERRIDE_STATUS = "overrideStatus"
    PARTICIPATING = "participating"
    SCHEDULE = "x-schedule"


class ResponseRequired(StrEnum):
    ALWAYS = "always"
    NEVER = "never"


class SignalName(StrEnum):
    SIMPLE = "SIMPLE"
    SIMPLE_LOWER = "simple"  # 2.0a spelling, still in the 2.0b enumeration
    ELECTRICITY_PRICE = "ELECTRICITY_PRICE"
    ENERGY_PRICE = "ENERGY_PRICE"
    DEMAND_CHARGE = "DEMAND_CHARGE"
    BID_PRICE = "BID_PRICE"
    BID_LOAD = "BID_LOAD"
    BID_ENERGY = "BID_ENERGY"
    CHARGE_STATE = "CHARGE_STATE"
    LOAD_DISPATCH = "LOAD_DISPATCH"
    LOAD_CONTROL = "LOAD_CONTROL"


class SignalType(StrEnum):
    DELTA = "delta"
    LEVEL = "level"
    MULTIPLIER = "multiplier"
    PRICE = "price"
    PRICE_MULTIPLIER = "priceMultiplier"
    PRICE_RELATIVE = "priceRelative"
    SETPOINT = "setpoint"
    LOAD_CONTROL_CAPACITY = "x-loadControlCapacity"
    LOAD_CONTROL_LEVEL_OFFSET = "x-loadControlLevelOffset"
    LOAD_CONTROL_PERCENT_OFFSET = "x-loadControlPercentOffset"
    LOAD_CONTROL_SETPOINT = "x-loadControlSetpoint"


class ReportName(StrEnum):
    METADATA_HISTORY_USAGE = "METADATA_HISTORY_USAGE"
    HISTORY_USAGE = "HISTORY_USAGE"
    METADATA_HISTORY_GREENBUTTON = "METADATA_HISTORY_GREENBUTTON"
    HISTORY_GREENBUTTON = "HISTORY_GREENBUTTON"
    METADATA_TELEMETRY_USAGE = "METADATA_TELEMETRY_USAGE"
    TELEMETRY_USAGE = "TELEMETRY_USAGE"
    METADATA_TELEMETRY_STATUS = "METADATA_TELEMETRY_STATUS"
    TELEMETRY_STATUS = "TELEMETRY_STATUS"


class ReportType(StrEnum):
    READING = "reading"
    USAGE = "usage"
    DEMAND = "demand"
    SET_POINT = "setPoint"
    DELTA_USAGE = "deltaUsage"
    DELTA_SET_POINT = "deltaSetPoint"
    DELTA_DEMAND = "deltaDemand"
    BASELINE = "baseline"
    DEVIATION = "deviation"
    AVG_USAGE = "avgUsage"
    AVG_DEMAND = "avgDemand"
    OPERATING_STATE = "operatingState"
    UP_REGULATION_CAPACITY_AVAILABLE = "upRegulationCapacityAvailable"
    DOWN_REGULATION_CAPACITY_AVAILABLE = "downRegulationCapacityAvailable"
    REGULATION_SETPOINT = "regulationSetpoint"
    STORED_ENERGY = "storedEnergy"
    TARGET_ENERGY_STORAGE = "targetEnergyStorage"
    AVAILABLE_ENERGY_STORAGE = "availableEnergyStorage"
    PRICE = "price"
    LEVEL = "level"
    POWER_FACTOR = "powerFactor"
    PERCENT_USAGE = "percentUsage"
    PERCENT_DEMAND = "percentDemand"
    RESOURCE_STATUS = "x-resourceStatus"


class ReadingType(StrEnum):
    DIRECT_READ = "Direct Read"
    NET = "Net"
    ALLOCATED = "Allocated"
    ESTIMATED = "Estimated"
    SUMMED = "Summed"
    DERIVED = "Derived"
    MEAN = "Mean"
    PEAK = "Peak"
    HYBRID = "Hybrid"
    CONTRACT = "Contract"
    PROJECTED = "Projected"
    RMS = "x-RMS"
    NOT_APPLICABLE = "x-notApplicable"


class DataQuality(StrEnum):
    NO_NO_VALUE = "No Quality - No Value"
    NO_NEW_VALUE_PREVIOUS_VALUE_USED = "No New Value - Previous Value Used"
    BAD_NON_SPECIFIC = "Quality Bad - Non Specific"
    BAD_CONFIGURATION_ERROR = "Quality Bad - Configuration Error"
    BAD_NOT_CONNECTED = "Quality Bad - Not Connected"
    BAD_DEVICE_FAILURE = "Quality Bad - Device Failure"
    BAD_SENSOR_FAILURE = "Quality Bad - Sensor Failure"
    BAD_LAST_KNOWN_VALUE = "Quality Bad - Last Known Value"
    BAD_COMM_FAILURE = "Quality Bad - Comm Failure"
    BAD_OUT_OF_SERVICE = "Quality Bad - Out of Service"
    UNCERTAIN_NON_SPECIFIC = "Quality Uncertain - Non Specific"
    UNCERTAIN_LAST_USABLE_VALUE = "Quality Uncertain - Last Usable Value"
    UNCERTAIN_SENSOR_NOT_ACCURATE = "Quality Uncertain - Sensor Not Accurate"
    UNCERTAIN_EU_UNITS_EXCEEDED = "Quality Uncertain - EU Units Exceeded"
    UNCERTAIN_SUB_NORMAL = "Quality Uncertain - Sub Normal"
    GOOD_NON_SPECIFIC = "Quality Good - Non Specific"
    GOOD_LOCAL_OVERRIDE = "Quality Good - Local Override"
    LIMIT_FIELD_NOT = "Quality Limit - Field/Not"
    LIMIT_FIELD_LOW = "Quality Limit - Field/Low"
    LIMIT_FIELD_HIGH = "Quality Limit - Field/High"
    LIMIT_FIELD_CONSTANT = "Quality Limit - Field/Constant"


class TransportName(StrEnum):
    SIMPLE_HTTP = "simpleHttp"
    XMPP = "xmpp"


class ItemKind(StrEnum):
    """The concrete element standing in for emix:itemBase (units of a signal or a report)."""

    POWER_REAL = "powerReal"
    POWER_APPARENT = "powerApparent"
    POWER_REACTIVE = "powerReactive"
    ENERGY_REAL = "energyReal"
    ENERGY_APPARENT = "energyApparent"
    ENERGY_REACTIVE = "energyReactive"
    VOLTAGE = "voltage"
    CURRENT = "current"
    FREQUENCY = "frequency"
    TEMPERATURE = "temperature"
    THERM = "Therm"
    PULSE_COUNT = "pulseCount"
    CURRENCY = "currency"
    CURRENCY_PER_KWH = "currencyPerKWh"
    CURRENCY_PER_KW = "currencyPerKW"
    CURRENCY_PER_THM = "currencyPerThm"
    CUSTOM_UNIT = "customUnit"


PROFILE_2_0B = "2.0b"
SCHEMA_VERSION = "2.0b"
