"""Measuring tools: answer quality (eval), refusal calibration, speed (bench) and load."""
