//! Invocation labels: the operation requested when a capability is invoked with
//! [`crate::syscall::Syscall::Call`] (label in the message info), and each operation's
//! message layout.

crate::abi_enum! {
    /// What an invocation asks of the invoked object.
    pub enum Invocation: u64 {
        /// Untyped: create objects. MRs: type, size_bits, dest CNode depth, dest index,
        /// count; extra cap 0: destination CNode.
        UntypedRetype = 1,
        /// CNode: Revoke(index, depth): delete every cap derived from the slot's cap.
        CNodeRevoke = 2,
        /// CNode: Delete(index, depth).
        CNodeDelete = 3,
        /// CNode: Copy(dest index, dest depth, src index, src depth, rights); extra cap 0: src CNode.
        CNodeCopy = 4,
        /// CNode: Mint(dest index, dest depth, src index, src depth, rights, badge); extra cap 0: src CNode.
        CNodeMint = 5,
        /// CNode: Move(dest index, dest depth, src index, src depth); extra cap 0: src CNode.
        CNodeMove = 6,
        /// CNode: Mutate(dest index, dest depth, src index, src depth, guard); extra cap 0: src CNode.
        CNodeMutate = 7,
        /// CNode: Rotate(dest, dest depth, pivot, pivot depth, src, src depth, badges...).
        CNodeRotate = 8,
        /// Frame: Map(vaddr, rights, attributes); extra cap 0: VSpace.
        FrameMap = 20,
        /// Frame: Unmap().
        FrameUnmap = 21,
        /// Frame: GetAddress() -> physical address.
        FrameGetAddress = 22,
        /// Page-table level: Map(vaddr); extra cap 0: VSpace.
        PageTableMap = 23,
        /// Page-table level: Unmap().
        PageTableUnmap = 24,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for i in Invocation::ALL {
            assert_eq!(Invocation::try_from(i.raw()), Ok(*i));
        }
        assert!(Invocation::try_from(0).is_err());
    }
}
