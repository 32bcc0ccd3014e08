//! The monthly process-health report (过程健康度报告).
