# the constants of the hot path are C ints when compiled
cdef int LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LOOP, LINKTYPE_LINUX_SLL
cdef int LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2
cdef int ETH_IPV4, ETH_IPV6, TCP, UDP

cpdef tuple parse(int linktype, bytes b)
