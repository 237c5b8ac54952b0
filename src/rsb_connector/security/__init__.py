"""Security binding: the hardened wire XML parser (and, alongside, identities, WS-Security and JWT)."""

from rsb_connector.security.xml import DEFAULT_LIMITS, UnsafeXmlError, XmlLimits, parse_xml

__all__ = ["DEFAULT_LIMITS", "UnsafeXmlError", "XmlLimits", "parse_xml"]
